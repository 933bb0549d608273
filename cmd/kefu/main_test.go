package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// TestMain lets tests run the real command line in a child process: with KEFU_TEST_ARGS set,
// the test binary is kefu.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("KEFU_TEST_ARGS"); ok {
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\x1f")
		}
		os.Exit(run(argv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// kefu runs the command line in a child process and returns its exit code and output.
func kefu(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "KEFU_TEST_ARGS="+strings.Join(args, "\x1f")), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeEmbeddedModel starts `kefu serve` with no model flag, as `make run` does, and talks
// to it over HTTP in both languages.
func TestServeEmbeddedModel(t *testing.T) {
	base, stop := startServe(t)
	for text, want := range map[string]string{"where is my parcel": "order_status", "我要退款": "refund", "转人工": "human_agent"} {
		resp, err := http.Post(base+"/v1/nlu/parse", "application/json", strings.NewReader(fmt.Sprintf(`{"text": %q}`, text)))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Heads map[string]struct{ Label string } `json:"heads"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out.Heads["intent"].Label != want {
			t.Errorf("%q: intent %q, want %q", text, out.Heads["intent"].Label, want)
		}
	}
	logs, err := stop()
	if err != nil {
		t.Errorf("serve: %v", err)
	}
	if strings.Contains(logs, "我要退款") || strings.Contains(logs, "parcel") {
		t.Error("message text appears in the logs")
	}
	if !strings.Contains(logs, `"msg":"kefu serving"`) {
		t.Errorf("no start line in logs:\n%s", logs)
	}
}

func TestMissingLibraryIsOneClearLine(t *testing.T) {
	for _, env := range [][]string{{"KEFU_ORT_LIB=/nonexistent/libonnxruntime.so.1"}, {"KEFU_ORT_LIB=" + os.Args[0]}} {
		code, _, stderr := kefu(t, env, "serve", "--addr", "127.0.0.1:0")
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(stderr, "make ort") || !strings.Contains(stderr, "KEFU_ORT_LIB") {
			t.Errorf("%v: exit %d, stderr:\n%s", env, code, stderr)
		}
	}
}

func TestUsageAndVersion(t *testing.T) {
	if code, _, stderr := kefu(t, nil); code != 2 || !strings.Contains(stderr, "serve") {
		t.Errorf("no args: exit %d, %q", code, stderr)
	}
	if code, _, stderr := kefu(t, nil, "frobnicate"); code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, stderr)
	}
	if code, stdout, _ := kefu(t, nil, "version"); code != 0 || !strings.HasPrefix(stdout, "kefu ") {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
	if code, _, stderr := kefu(t, nil, "serve", "--no-such-flag"); code != 2 || !strings.Contains(stderr, "Usage: kefu serve") {
		t.Errorf("bad flag: exit %d, %q", code, stderr)
	}
	if code, _, stderr := kefu(t, nil, "serve", "-h"); code != 0 || !strings.Contains(stderr, "-max-batch") {
		t.Errorf("serve -h: exit %d, %q", code, stderr)
	}
}

func TestEvalOnDemoData(t *testing.T) {
	lib, err := testenv.ORTLibrary()
	if err != nil {
		testenv.Unavailable(t, "ONNX Runtime", err)
	}
	dir := t.TempDir()
	csv := filepath.Join(dir, "held-out.csv")
	os.WriteFile(csv, []byte("text,label\nwhere is my package,order_status\n我要退款,refund\nplease cancel my order,cancel_order\nhello there,greeting\nsomething new,no_such_intent\n"), 0o644)
	report := filepath.Join(dir, "report.json")
	code, stdout, stderr := kefu(t, []string{"KEFU_ORT_LIB=" + lib}, "eval", "--data", csv, "--json", report)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var s struct {
		N        int     `json:"n"`
		Accuracy float64 `json:"accuracy"`
		MacroF1  float64 `json:"macro_f1"`
		Unknown  int     `json:"unknown"`
	}
	data, _ := os.ReadFile(report)
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.N != 4 || s.Unknown != 1 || s.Accuracy != 1 || s.MacroF1 != 1 {
		t.Errorf("report %+v\n%s", s, stdout)
	}
	os.WriteFile(csv, []byte("text,label\nfine,greeting\n,refund\n"), 0o644)
	code, _, stderr = kefu(t, []string{"KEFU_ORT_LIB=" + lib}, "eval", "--data", csv)
	if code != 1 || !strings.Contains(stderr, csv+":3: row without text") {
		t.Errorf("bad row: exit %d, %q", code, stderr)
	}
}

// TestTrainThenEval trains a small model from the shipped bot data with `kefu train`, checks
// the bundle through ONNX Runtime with `kefu eval` (on the emotion head too), and feeds the
// trainer bad data.
func TestTrainThenEval(t *testing.T) {
	lib, err := testenv.ORTLibrary()
	if err != nil {
		testenv.Unavailable(t, "ONNX Runtime", err)
	}
	env := []string{"KEFU_ORT_LIB=" + lib}
	nlu := filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot", "nlu")
	out := filepath.Join(t.TempDir(), "model")
	code, stdout, stderr := kefu(t, env, "train", "--data", nlu, "--emotion-data", nlu, "--hidden", "64", "--ensemble", "1",
		"--epochs", "12", "--out", out)
	if code != 0 {
		t.Fatalf("train: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"head intent: 33 labels", "head emotion: 6 labels", "epoch  1/12  loss", "refit on all"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	var m struct {
		Training struct {
			Heads []struct {
				Name          string  `json:"name"`
				Examples      int     `json:"examples"`
				ValidAccuracy float64 `json:"valid_accuracy"`
			} `json:"heads"`
			Seconds float64 `json:"seconds"`
		} `json:"training"`
	}
	data, _ := os.ReadFile(filepath.Join(out, "model.json"))
	if err := json.Unmarshal(data, &m); err != nil || len(m.Training.Heads) != 2 || m.Training.Heads[0].Examples < 2400 || m.Training.Heads[1].Examples < 1800 {
		t.Fatalf("model.json training report: %v %+v", err, m.Training)
	}
	// Held-out phrasings written for this test, not in the training files.
	held := filepath.Join(t.TempDir(), "held.csv")
	os.WriteFile(held, []byte("text,label\n"+
		"could you tell me where my package is right now,order_status\n"+
		"i would like my money refunded,refund\n"+
		"please put me through to a real agent,human_agent\n"+
		"my bank card got stolen this morning,card_lost\n"+
		"我想取消刚才那个订单,cancel_order\n"+
		"帮我开一张公司发票,invoice\n"+
		"你好呀,greeting\n"+
		"我的账户被冻结了登不上,account_locked\n"), 0o644)
	report := filepath.Join(t.TempDir(), "eval.json")
	code, stdout, stderr = kefu(t, env, "eval", "--model", out, "--data", held, "--json", report)
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var s struct {
		N        int     `json:"n"`
		Accuracy float64 `json:"accuracy"`
	}
	data, _ = os.ReadFile(report)
	json.Unmarshal(data, &s)
	if s.N != 8 || s.Accuracy < 0.75 {
		t.Errorf("held-out intents: %+v\n%s", s, stdout)
	}
	code, stdout, _ = kefu(t, env, "eval", "--model", out, "--data", nlu, "--head", "emotion")
	if code != 0 || !strings.Contains(stdout, "head      emotion") {
		t.Errorf("emotion eval: exit %d\n%s", code, stdout)
	}

	bad := filepath.Join(t.TempDir(), "bad.csv")
	for _, c := range []struct{ data, want string }{
		{"text,label\nhello,greet\nhi,\n", "bad.csv:3: row without label"},
		{"text,label\nhello,greet\nhi,greet\n", "needs at least two"},
		{"text,label\n", "no rows after the header"},
		{"text,label\n\xff\xfe,greet\n", "bad.csv:2: not UTF-8 text"},
	} {
		os.WriteFile(bad, []byte(c.data), 0o644)
		code, _, stderr := kefu(t, env, "train", "--data", bad, "--out", out)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, %q, want %q", c.data, code, stderr, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "model.onnx")); err != nil {
		t.Errorf("failed runs removed the earlier bundle: %v", err)
	}
	if code, _, stderr := kefu(t, env, "train", "--data", bad, "--format", "xml", "--out", out); code != 1 || !strings.Contains(stderr, `unknown format "xml"`) {
		t.Errorf("unknown format: exit %d, %q", code, stderr)
	}
	vec := filepath.Join(t.TempDir(), "v.txt")
	os.WriteFile(vec, []byte("2 3\nrefund 1 0 0\norder 0 1\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--vectors", vec}, "--vectors: " + vec + ":3: 2 numbers after \"order\", want 3 like the first row"},
		{[]string{"--vectors", vec + ".missing"}, "no such file"},
		{[]string{"--char-weight", "0"}, "--char-weight 0: want a weight > 0"},
		{[]string{"--vector-words", "-1"}, "--vector-words -1: want a count ≥ 0"},
		{[]string{"--epochs", "-1"}, "--epochs -1: want a count ≥ 0"},
	} {
		args := append([]string{"train", "--data", nlu, "--out", out}, c.args...)
		if code, _, stderr := kefu(t, env, args...); code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q, want %q", c.args, code, stderr, c.want)
		}
	}
}

// TestStartupErrorsAreOneLine: whatever keeps kefu serve from starting is said in one line
// on stderr, with exit status 1 and no panic: an unreachable Redis, a data directory that
// cannot be created, an invalid bot bundle (its file and line), an invalid model bundle.
func TestStartupErrorsAreOneLine(t *testing.T) {
	testenv.Runtime(t) // the child needs ONNX Runtime to get as far as each failure
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	badBot := filepath.Join(dir, "bot")
	os.MkdirAll(filepath.Join(badBot, "dialogs"), 0o755)
	os.WriteFile(filepath.Join(badBot, "bot.yaml"), []byte("languages: [zh, en]\nresponses:\n  clarify: {zh: 好}\n"), 0o644)
	badModel := filepath.Join(dir, "model")
	os.MkdirAll(badModel, 0o755)
	os.WriteFile(filepath.Join(badModel, "model.json"), []byte("{not json"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unreachable Redis", []string{"--redis", "redis://127.0.0.1:1/0"}, "redis at 127.0.0.1:1"},
		{"data dir under a file", []string{"--data-dir", filepath.Join(file, "kefu-data")}, "data dir " + filepath.Join(file, "kefu-data")},
		{"invalid bot bundle", []string{"--bot", badBot}, "bot.yaml:3: responses.clarify: no en text"},
		{"invalid model bundle", []string{"--model", badModel}, "model.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data")}, tc.args...)
			code, _, stderr := kefu(t, nil, args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != 1 || len(lines) != 1 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "panic") {
				t.Errorf("exit %d, stderr (%d lines):\n%s\nwant one line containing %q", code, len(lines), stderr, tc.want)
			}
		})
	}
}
