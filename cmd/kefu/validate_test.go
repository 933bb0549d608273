package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kefu-ai/kefu/internal/testenv"
)

// copyBot copies the demo bundle's bot.yaml, dialogs/, kb/, nlu/ and tests/ to a new
// folder and returns it.
func copyBot(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk("bot", func(p string, info os.FileInfo, err error) error {
		if err != nil || strings.HasPrefix(p, filepath.Join("bot", "model")) {
			return err
		}
		target := filepath.Join(dst, strings.TrimPrefix(p, "bot"))
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func edit(t *testing.T, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(data), old) {
		t.Fatalf("%s: %q not found (%v)", file, old, err)
	}
	os.WriteFile(file, []byte(strings.Replace(string(data), old, new, 1)), 0o644)
}

func TestValidateDemoBundleIsClean(t *testing.T) {
	code, stdout, stderr := kefu(t, nil, "validate")
	if code != 0 || stdout != "" || !strings.Contains(stderr, "0 error(s), 0 warning(s)") || !strings.Contains(stderr, "10 stories") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestValidateRefusesAMisspelledFlowIntent: validate names the file and line; serve refuses
// to start with the same bundle.
func TestValidateRefusesAMisspelledFlowIntent(t *testing.T) {
	dir := copyBot(t)
	edit(t, filepath.Join(dir, "dialogs", "refund.yaml"), "intents: [refund, return_item]", "intents: [refundz, return_item]")
	code, stdout, _ := kefu(t, nil, "validate", "--bot", dir)
	want := filepath.Join(dir, "dialogs", "refund.yaml") + `:3: error: flows.refund.intents names intent "refundz", which the model does not have (did you mean "refund"?)`
	if code != 1 || strings.TrimSpace(stdout) != want {
		t.Errorf("exit %d, stdout:\n%s\nwant:\n%s", code, stdout, want)
	}
	testenv.Runtime(t)
	code, _, stderr := kefu(t, nil, "serve", "--bot", dir, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(stderr, `dialogs/refund.yaml:3: error: flows.refund.intents names intent "refundz"`) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("serve: exit %d\n%s", code, stderr)
	}
}

// TestValidateFindsDataProblems: handoff intents, stories, KB files and training data,
// each finding with its file and line; warnings alone exit 0.
func TestValidateFindsDataProblems(t *testing.T) {
	dir := copyBot(t)
	edit(t, filepath.Join(dir, "bot.yaml"), "    human_agent: requested", "    human_agnt: requested")
	tmp := t.TempDir()
	kbA, kbB := filepath.Join(tmp, "a.yaml"), filepath.Join(tmp, "b.csv")
	os.WriteFile(kbA, []byte("articles:\n  - id: opening-hours\n    questions: [\"When are you open?\"]\n    answers:\n      - {en: Nine to six, zh: 九点到六点}\n  - id: late-fee\n    questions: [is there a late fee]\n    answers:\n      - {en: No., zh: 没有}\n"), 0o644)
	os.WriteFile(kbB, []byte("id,questions,answer_en,answer_zh\nhours,when are you open,9-6,九点到六点\nlate-fee,late fees?,None,没有\n"), 0o644)
	stories := filepath.Join(tmp, "stories.yaml")
	os.WriteFile(stories, []byte("stories:\n  - story: typo\n    steps:\n      - user: hello\n        intent: greting\n      - user: refund please\n        flow: refund\n        state: confirm\n        article: opening-hours\n"), 0o644)
	data := filepath.Join(tmp, "nlu.yaml")
	os.WriteFile(data, []byte("intents:\n  refund:\n    en: [I want a refund, money back please, refund me, refund my order, give me a refund]\n  cancel_order:\n    en: [cancel it, \"I want a refund!\"]\n"), 0o644)
	code, stdout, stderr := kefu(t, nil, "validate", "--bot", dir, "--kb", kbA+","+kbB, "--stories", stories, "--data", data)
	for _, want := range []string{
		filepath.Join(dir, "bot.yaml") + `:18: error: handoff.intents names intent "human_agnt"`,
		kbB + `:2: warning: article "hours" asks "when are you open", which article "opening-hours" (` + kbA + `:2) asks too`,
		kbB + `:3: error: article id "late-fee" is also at ` + kbA + `:6`,
		stories + `:4: error: story "typo": intent "greting" does not exist (did you mean "greeting"?)`,
		data + `:5: error: "I want a refund!" is labelled intent cancel_order here and refund at ` + data + `:3`,
		data + `:5: warning: intent cancel_order has 2 training example(s)`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("missing %q", want)
		}
	}
	if code != 1 || strings.Count(stdout, "\n") != 6 {
		t.Errorf("exit %d, %d findings:\n%s%s", code, strings.Count(stdout, "\n"), stdout, stderr)
	}
	// Warnings only: exit 0.
	extra := filepath.Join(tmp, "c.csv")
	os.WriteFile(extra, []byte("id,questions,answer_en,answer_zh\nrefund-days,How long does a refund take?,A week,一周\n"), 0o644)
	code, stdout, _ = kefu(t, nil, "validate", "--kb", filepath.Join("bot", "kb", "faq.yaml"), "--kb", extra)
	if code != 0 || !strings.Contains(stdout, "warning:") || strings.Contains(stdout, "error:") {
		t.Errorf("warnings only: exit %d\n%s", code, stdout)
	}
}

// TestDemoBotBesideAnotherModelOnlyWarns: a model dropped in without --bot (to serve
// /v1/nlu/parse) starts with a warning naming what does not fit; the same model with a
// bundle given by --bot is refused.
func TestDemoBotBesideAnotherModelOnlyWarns(t *testing.T) {
	dir, err := extractModel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	edit(t, filepath.Join(dir, "model.json"), `"human_agent"`, `"person_please"`)
	_, stop := startServe(t, "--model", dir)
	logs, _ := stop()
	if !strings.Contains(logs, "the embedded demo bot does not fit this model") || !strings.Contains(logs, `human_agent`) {
		t.Errorf("no warning:\n%s", logs)
	}
	code, _, stderr := kefu(t, nil, "serve", "--model", dir, "--bot", copyBot(t), "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	if code != 1 || !strings.Contains(stderr, `handoff.intents names intent "human_agent"`) {
		t.Errorf("with --bot: exit %d\n%s", code, stderr)
	}
}
