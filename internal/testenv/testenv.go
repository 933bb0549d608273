// Package testenv gives tests the real services they run against: the ONNX Runtime library
// and Redis. On a developer's machine a missing service skips the test with the fix; under
// CI=true it fails the test, so CI never passes by skipping.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/internal/redisx"
	"github.com/kefu-ai/kefu/models"
)

var (
	rtOnce sync.Once
	rt     *models.Runtime
	rtErr  error
)

// Unavailable skips the test, or fails it under CI=true.
func Unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s unavailable (CI=true, not skipping): %v", what, err)
	}
	tb.Skipf("%s unavailable: %v", what, err)
}

// ORTLibrary returns the ONNX Runtime library path: $KEFU_ORT_LIB, else
// third_party/onnxruntime/libonnxruntime.so.1 in the repository.
func ORTLibrary() (string, error) {
	return models.FindLibrary(os.Getenv("KEFU_ORT_LIB"), filepath.Join(RepoRoot(), "third_party", "onnxruntime", "libonnxruntime.so.1"))
}

// Runtime opens the process's ONNX Runtime environment once and shares it between tests.
func Runtime(tb testing.TB) *models.Runtime {
	tb.Helper()
	rtOnce.Do(func() {
		var lib string
		if lib, rtErr = ORTLibrary(); rtErr == nil {
			rt, rtErr = models.OpenRuntime(lib)
		}
	})
	if rtErr != nil {
		Unavailable(tb, "ONNX Runtime", rtErr)
	}
	return rt
}

// RepoRoot is the directory holding go.mod, found upwards from the working directory.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// SharedData is ../shared/data beside the repository, where the public benchmark sets live.
func SharedData() string { return filepath.Join(RepoRoot(), "..", "shared", "data") }

// RedisAddr is $REDIS_ADDR, default 127.0.0.1:6379 (scripts/with-redis.sh starts one there).
func RedisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Redis returns a client of the test Redis (the cluster UseRedis set, if any) and a key
// prefix of the test's own; keys under the prefix are deleted when the test ends.
func Redis(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	prefix := fmt.Sprintf("kefutest:%s:%d:", tb.Name(), time.Now().UnixNano())
	if c := override.Load(); c != nil {
		tb.Cleanup(func() { deleteKeys(*c, prefix) })
		return *c, prefix
	}
	c := redis.NewClient(&redis.Options{Addr: RedisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		Unavailable(tb, "Redis at "+RedisAddr(), err)
	}
	tb.Cleanup(func() {
		deleteKeys(c, prefix)
		c.Close()
	})
	return c, prefix
}

var override atomic.Pointer[redis.UniversalClient]

// UseRedis makes Redis answer with rdb (a cluster, a Sentinel's master) until the test
// ends, so that a package's store tests run again on it.
func UseRedis(tb testing.TB, rdb redis.UniversalClient) {
	override.Store(&rdb)
	tb.Cleanup(func() { override.Store(nil) })
}

func deleteKeys(c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	redisx.Keys(ctx, c, prefix+"*", func(key string) error { return c.Del(ctx, key).Err() })
}

// Tool returns the path of a third-party checker the tests run: promtool from PATH, or
// redocly from scripts/redocly (scripts/checkers.sh installs both). A missing tool skips
// the test, or fails it under CI=true.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	candidates := []string{name}
	if name == "redocly" {
		candidates = []string{filepath.Join(RepoRoot(), "scripts", "redocly", "node_modules", ".bin", "redocly")}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	Unavailable(tb, name, fmt.Errorf("not found (run scripts/checkers.sh)"))
	return ""
}
