// Command kefu is the kefu conversation engine: one binary with subcommands.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/kefu-ai/kefu/models"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `kefu — a conversation engine for customer service

Usage:
  kefu <command> [flags]

Commands:
  serve     run the HTTP API (the embedded demo bot and model unless told otherwise)
  handoff-sink
            receive and print signed handoffs (and serve the demo bot's order backend)
  bench     measure tokenization, ONNX Runtime and batched classification speed
            (kefu bench kb: knowledge-base indexing and search on generated articles;
             kefu bench http: load a running kefu serve with concurrent conversations)
  train     train an intent (and emotion) model from labelled data into a model bundle
  eval      measure a model on labelled data: per-class figures, confusions, handoff
            threshold, calibration, latency; reports in JSON, Markdown and HTML;
            cross-validation (--cv), model comparison (--compare), regression gate (--baseline)
  test      run conversation test stories (YAML) against the bot, in process or at --url
  kb        import or export knowledge-base articles (YAML or CSV)
  validate  check a bot bundle against its model, knowledge base, stories and training
            data: unknown intents, duplicate articles, contradictory examples (file:line)
  analytics export the analytics events of a period as JSON lines (for a warehouse)
  version   print the version
  help      this text; 'kefu help CMD' is 'kefu CMD --help'

Run 'kefu <command> --help' (or 'kefu help <command>') for a command's flags. Flags
may come before or after a command's arguments.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "handoff-sink":
		err = handoffSink(ctx, args[1:], stdout, stderr)
	case "bench":
		err = bench(ctx, args[1:], stdout, stderr)
	case "train":
		err = trainCmd(ctx, args[1:], stdout, stderr)
	case "eval":
		err = evaluate(ctx, args[1:], stdout, stderr)
	case "test":
		err = testCmd(ctx, args[1:], stdout, stderr)
	case "kb":
		err = kbCmd(ctx, args[1:], stdout, stderr)
	case "validate":
		err = validateCmd(ctx, args[1:], stdout, stderr)
	case "analytics":
		err = analyticsCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "--help":
		if len(args) > 1 && args[0] == "help" { // kefu help serve → kefu serve --help, on stdout
			return run(append(slices.Clone(args[1:]), "--help"), stdout, stdout)
		}
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "kefu: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errValidation): // the findings are the message
		return 1
	}
	fmt.Fprintf(stderr, "kefu %s: %v\n", args[0], err)
	return 1
}

var errUsage = errors.New("usage")

func versionString() string {
	goVersion := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
	}
	return fmt.Sprintf("kefu %s (%s; ONNX Runtime >= %s)", version, goVersion, models.MinORTVersion)
}

// newFlags returns a flag set that prints its usage to stderr and reports errors as errUsage.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: kefu %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a command that takes flags only.
func parseFlags(fs *flag.FlagSet, args []string) error {
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		fmt.Fprintf(fs.Output(), "kefu %s: unexpected argument %q\n", fs.Name(), rest[0])
		fs.Usage()
		return errUsage
	}
	return nil
}

// parseArgs parses flags wherever they are among the arguments (kefu kb import FILE
// --data-dir D) and returns the other arguments in order; after "--" everything is an
// argument.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		left := fs.Args()
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" {
			return append(rest, left...), nil // the flag package stopped at "--"
		}
		if len(left) == 0 {
			return rest, nil
		}
		rest, args = append(rest, left[0]), left[1:]
	}
}

// envFlags gives flags of fs an environment variable (envName), named in the flag's
// help: every flag, or only those listed. Call it after defining the flags and before
// parsing: a flag on the command line wins over the variable. A variable that does not
// parse is an error naming it.
func envFlags(fs *flag.FlagSet, only ...string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if len(only) > 0 && !slices.Contains(only, f.Name) {
			return
		}
		name := envName(f.Name)
		f.Usage += " ($" + name + ")"
		if v, ok := os.LookupEnv(name); ok && v != "" && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("$%s=%q is not a valid --%s (like its default, %q): %v", name, v, f.Name, f.DefValue, e)
			} else {
				f.DefValue = v
			}
		}
	})
	return err
}

// envName is a flag's environment variable: KEFU_ and the name in capitals with _ for -
// (KEFU_REDIS_URL for --redis).
func envName(flagName string) string {
	if flagName == "redis" {
		return "KEFU_REDIS_URL"
	}
	return "KEFU_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ortFlag adds --ort-lib and returns a function that opens the runtime. An explicit
// --ort-lib or $KEFU_ORT_LIB is used alone; otherwise third_party/onnxruntime/ under the
// working directory, then beside the executable.
func ortFlag(fs *flag.FlagSet) func() (*models.Runtime, error) {
	lib := fs.String("ort-lib", "", "ONNX Runtime shared library (default third_party/onnxruntime/libonnxruntime.so.1, then beside the binary)")
	return func() (*models.Runtime, error) {
		candidates := []string{cmp.Or(*lib, os.Getenv("KEFU_ORT_LIB"))}
		if candidates[0] == "" {
			candidates = []string{filepath.Join("third_party", "onnxruntime", "libonnxruntime.so.1")}
			if exe, err := os.Executable(); err == nil {
				dir := filepath.Dir(exe)
				candidates = append(candidates, filepath.Join(dir, "libonnxruntime.so.1"), filepath.Join(dir, "..", "third_party", "onnxruntime", "libonnxruntime.so.1"))
			}
		}
		path, err := models.FindLibrary(candidates...)
		if err != nil {
			return nil, err
		}
		return models.OpenRuntime(path)
	}
}

// modelFlags adds the flags that tune a Classifier.
func modelFlags(fs *flag.FlagSet) *models.Config {
	cfg := &models.Config{}
	fs.StringVar(&cfg.Session.Provider, "provider", "cpu", "execution provider: cpu or cuda (falls back to cpu with a warning)")
	fs.IntVar(&cfg.Session.DeviceID, "device", 0, "CUDA device id")
	fs.IntVar(&cfg.Session.IntraOpThreads, "threads", 0, "threads per model run (0: cores / workers)")
	fs.IntVar(&cfg.Session.InterOpThreads, "inter-threads", 0, "threads across graph branches (0: ONNX Runtime's default)")
	fs.IntVar(&cfg.MaxBatch, "max-batch", 32, "most texts in one model run")
	fs.DurationVar(&cfg.MaxWait, "max-wait", 1e6, "how long a batch may wait to fill after its first text (only while requests arrive at least one per max-wait)")
	fs.IntVar(&cfg.QueueSize, "queue", 256, "requests that may wait for the model before answering overloaded")
	fs.IntVar(&cfg.Workers, "workers", 2, "batches run at once (keep workers × threads ≤ cores)")
	return cfg
}
