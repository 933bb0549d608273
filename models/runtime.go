package models

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// MinORTVersion is the oldest ONNX Runtime library kefu runs on (onnxruntime_go v1.27 asks
// for C API 24).
const MinORTVersion = "1.24"

// ErrNoRuntime means no usable ONNX Runtime library was found.
var ErrNoRuntime = errors.New("onnx runtime library not available")

// Runtime is the process's ONNX Runtime environment. There is one per process: ONNX Runtime
// keeps it in global state. Open it once, share it, close it last.
type Runtime struct {
	lib     string
	version string
}

var (
	runtimeMu   sync.Mutex
	runtimeOpen *Runtime
	runtimeRefs int
)

// FindLibrary returns the first of candidates that is an existing file, or an error naming
// every place looked at and the fix. Empty candidates are skipped.
func FindLibrary(candidates ...string) (string, error) {
	var tried []string
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			abs, err := filepath.Abs(c)
			if err != nil {
				return "", err
			}
			return abs, nil
		}
		tried = append(tried, c)
	}
	return "", fmt.Errorf("%w: not found at %s; run `make ort` (scripts/ort.sh) or set KEFU_ORT_LIB to libonnxruntime.so >= %s",
		ErrNoRuntime, strings.Join(tried, ", "), MinORTVersion)
}

// OpenRuntime loads the ONNX Runtime shared library at lib (an absolute path) and creates the
// environment. Opening again in the same process with the same library shares the environment.
func OpenRuntime(lib string) (*Runtime, error) {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	if runtimeOpen != nil {
		if runtimeOpen.lib != lib {
			return nil, fmt.Errorf("onnx runtime already open from %s; one library per process", runtimeOpen.lib)
		}
		runtimeRefs++
		return runtimeOpen, nil
	}
	if _, err := os.Stat(lib); err != nil {
		return nil, fmt.Errorf("%w: %s does not exist; run `make ort` (scripts/ort.sh) or set KEFU_ORT_LIB", ErrNoRuntime, lib)
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("%w: %s is not ONNX Runtime >= %s (%v); run `make ort` (scripts/ort.sh) or set KEFU_ORT_LIB",
			ErrNoRuntime, lib, MinORTVersion, err)
	}
	runtimeOpen = &Runtime{lib: lib, version: ort.GetVersion()}
	runtimeRefs = 1
	return runtimeOpen, nil
}

// Version is the loaded library's version, such as "1.24.1".
func (r *Runtime) Version() string { return r.version }

// Library is the path the library was loaded from.
func (r *Runtime) Library() string { return r.lib }

// Close releases this reference; the last one destroys the environment. Sessions must be
// closed first.
func (r *Runtime) Close() error {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	if runtimeOpen != r || runtimeRefs == 0 {
		return nil
	}
	runtimeRefs--
	if runtimeRefs > 0 {
		return nil
	}
	runtimeOpen = nil
	return ort.DestroyEnvironment()
}

// SessionConfig chooses where and how a model runs.
type SessionConfig struct {
	// Provider is "cpu" (default) or "cuda". When CUDA cannot be used, the session runs on
	// the CPU and one warning is logged.
	Provider string
	// DeviceID is the CUDA device; default 0.
	DeviceID int
	// IntraOpThreads is the threads one run may use. A Classifier defaults it to the cores
	// divided by its workers; elsewhere 0 lets ONNX Runtime choose.
	IntraOpThreads int
	// InterOpThreads is the threads for parallel graph branches; 0 lets ONNX Runtime choose.
	InterOpThreads int
}

// newSession opens a session on the model file. It returns the provider actually used.
func newSession(path string, inputs, outputs []string, cfg SessionConfig, log *slog.Logger) (*ort.DynamicAdvancedSession, string, error) {
	build := func(cuda bool) (*ort.DynamicAdvancedSession, error) {
		opts, err := ort.NewSessionOptions()
		if err != nil {
			return nil, err
		}
		defer opts.Destroy()
		if cfg.IntraOpThreads > 0 {
			if err := opts.SetIntraOpNumThreads(cfg.IntraOpThreads); err != nil {
				return nil, err
			}
		}
		if cfg.InterOpThreads > 0 {
			if err := opts.SetInterOpNumThreads(cfg.InterOpThreads); err != nil {
				return nil, err
			}
		}
		if cuda {
			cudaOpts, err := ort.NewCUDAProviderOptions()
			if err != nil {
				return nil, err
			}
			defer cudaOpts.Destroy()
			if err := cudaOpts.Update(map[string]string{"device_id": fmt.Sprint(cfg.DeviceID)}); err != nil {
				return nil, err
			}
			if err := opts.AppendExecutionProviderCUDA(cudaOpts); err != nil {
				return nil, err
			}
		}
		return ort.NewDynamicAdvancedSession(path, inputs, outputs, opts)
	}
	switch cfg.Provider {
	case "", "cpu":
		s, err := build(false)
		return s, "cpu", err
	case "cuda":
		s, err := build(true)
		if err == nil {
			return s, "cuda", nil
		}
		log.Warn("CUDA execution provider unavailable; running on CPU", "device", cfg.DeviceID, "err", firstLine(err))
		s, err = build(false)
		return s, "cpu", err
	}
	return nil, "", fmt.Errorf("provider %q is not cpu or cuda", cfg.Provider)
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
