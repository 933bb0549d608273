// Package testenv gives tests the real services they run against: the ONNX Runtime library
// and Redis. On a developer's machine a missing service skips the test with the fix; under
// CI=true it fails the test, so CI never passes by skipping.
package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

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
