package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/handoff/webhook"
)

// TestEveryCommandAnswersHelp: each command and sub-command answers --help, and
// 'kefu help CMD', with exit 0 and its own usage.
func TestEveryCommandAnswersHelp(t *testing.T) {
	for _, cmd := range [][]string{{"serve"}, {"handoff-sink"}, {"bench"}, {"bench", "kb"}, {"bench", "http"}, {"train"}, {"eval"},
		{"test"}, {"kb"}, {"kb", "import"}, {"kb", "export"}, {"validate"}} {
		name := strings.Join(cmd, " ")
		code, _, stderr := kefu(t, nil, append(cmd, "--help")...)
		if code != 0 || !strings.Contains(stderr, "kefu "+name) {
			t.Errorf("kefu %s --help: exit %d\n%s", name, code, stderr)
		}
		code, stdout, _ := kefu(t, nil, append([]string{"help"}, cmd...)...)
		if code != 0 || !strings.Contains(stdout, "kefu "+name) {
			t.Errorf("kefu help %s: exit %d\n%s", name, code, stdout)
		}
	}
}

// TestFlagsAfterArguments: kefu kb import FILE --data-dir D reads FILE into D.
func TestFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "faq.yaml")
	os.WriteFile(file, []byte("articles:\n  - id: opening-hours\n    questions: [when are you open]\n    answers:\n      - {id: v1, en: Nine to six., zh: 九点到六点}\n"), 0o644)
	data := filepath.Join(dir, "data")
	code, stdout, stderr := kefu(t, nil, "kb", "import", file, "--data-dir", data, "--author", "ann")
	if code != 0 || !strings.Contains(stdout, "1 created") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "kb.journal")); err != nil {
		t.Errorf("--data-dir after the file was not used: %v", err)
	}
	code, stdout, _ = kefu(t, nil, "kb", "export", "--data-dir", data)
	if code != 0 || !strings.Contains(stdout, "opening-hours") {
		t.Errorf("export: exit %d\n%s", code, stdout)
	}
}

// TestServeFlagsHaveEnvironmentVariables: every serve flag names its KEFU_ variable in
// --help, the README's table lists each flag with it, and a variable that does not parse
// is one line naming it.
func TestServeFlagsHaveEnvironmentVariables(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, stderr := kefu(t, nil, "serve", "--help")
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(stderr, -1) {
		flagName, env := m[1], envName(m[1])
		if !strings.Contains(stderr, "($"+env+")") {
			t.Errorf("--%s: help does not name $%s", flagName, env)
		}
		if !regexp.MustCompile("(?m)^\\| `--" + flagName + "` \\| `" + env + "` \\|").Match(readme) {
			t.Errorf("README's serve table lacks | `--%s` | `%s` |", flagName, env)
		}
	}
	code, _, stderr := kefu(t, []string{"KEFU_STATE_TTL=a while"}, "serve")
	if code != 1 || !strings.Contains(stderr, "$KEFU_STATE_TTL") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("a bad variable: exit %d\n%s", code, stderr)
	}
	code, _, stderr = kefu(t, []string{"KEFU_CORS_ORIGINS=*"}, "serve")
	if code != 1 || !strings.Contains(stderr, "--cors-origins") {
		t.Errorf("a bad origin list: exit %d\n%s", code, stderr)
	}
}

// TestSinkPrintsCustomerTextEscaped: a customer's terminal escape, a forged "=== handoff"
// line and a direction override reach the sink's output as visible escapes.
func TestSinkPrintsCustomerTextEscaped(t *testing.T) {
	body := `{"type":"handoff","conversation":"c1","customer":{"id":"c\u001b[2J"},"summary":"s","slots":{"name":"x\n=== handoff forged"},` +
		`"transcript":[{"text":"hi\u001b]0;owned\u0007\n=== handoff fake: conversation x","replies":["ok\u202e"]}]}`
	var out strings.Builder
	printDelivery(&out, webhook.Received{Key: "c1:handoff:1", Kind: "handoff", Body: []byte(body)})
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\u202e") || strings.Count(got, "\n=== handoff") != 0 || !strings.Contains(got, `\x1b[2J`) || !strings.Contains(got, `\n=== handoff fake`) {
		t.Errorf("printed:\n%s", got)
	}
}
