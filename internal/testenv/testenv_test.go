package testenv_test

import (
	"testing"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// TestServicesAvailable proves the test setup: the ONNX Runtime library loads and a Redis
// answers at REDIS_ADDR (under CI=true a missing one fails here, by name).
func TestServicesAvailable(t *testing.T) {
	if v := testenv.Runtime(t).Version(); v == "" {
		t.Error("ONNX Runtime reports no version")
	}
	c, prefix := testenv.Redis(t)
	if err := c.Set(t.Context(), prefix+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := c.Get(t.Context(), prefix+"k").Val(); got != "v" {
		t.Errorf("Redis round trip: got %q", got)
	}
}
