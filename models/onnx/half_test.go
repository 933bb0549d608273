package onnx

import (
	"math"
	"testing"
)

func TestHalf(t *testing.T) {
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {0.1, 0x2e66}, {65504, 0x7bff}, {65520, 0x7c00}, {1e9, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {0.000061035156, 0x0400}, {5.960464e-08, 0x0001},
		{2.98e-08, 0}, {3e-08, 1}, {0, 0}, {1.0009765625 + 0.00048828125, 0x3c02}, // tie rounds to even
	} {
		if got := Half(c.f); got != c.h {
			t.Errorf("Half(%v) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if got := Half(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("Half(NaN) = %#04x, want a NaN", got)
	}
}
