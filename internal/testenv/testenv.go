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
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// Redis returns a client of the test Redis and a key prefix of the test's own; keys under the
// prefix are deleted when the test ends.
func Redis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: RedisAddr()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		Unavailable(tb, "Redis at "+RedisAddr(), err)
	}
	prefix := fmt.Sprintf("kefutest:%s:%d:", tb.Name(), time.Now().UnixNano())
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		c.Close()
	})
	return c, prefix
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
