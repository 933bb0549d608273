package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/eval"
	"github.com/kefu-ai/kefu/models"
)

// listFlag is a flag that may be repeated and may hold comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// validateCmd runs `kefu validate`: a bot bundle, its model, knowledge base, stories and
// training data checked against each other. Findings go to stdout, one per line with
// file:line; exit 1 when one is an error.
func validateCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("validate", "[--bot DIR] [--model DIR] [--kb FILE…] [--stories FILE…] [--data FILE…]", stderr)
	botDir := fset.String("bot", "", "bot bundle directory (default: the embedded demo bot)")
	modelDir := fset.String("model", "", "model bundle directory: its labels are checked (default: the embedded demo model)")
	var kbFiles, storyPaths, dataPaths listFlag
	fset.Var(&kbFiles, "kb", "knowledge-base files, YAML or CSV; repeat or separate with commas (default: the bundle's kb/*.yaml)")
	fset.Var(&storyPaths, "stories", "story files or folders (default: the bundle's tests/)")
	fset.Var(&dataPaths, "data", "training data files or folders (default: the bundle's nlu/)")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	var bundle eval.Bundle
	var findings []eval.Finding
	fail := func(err error) { findings = append(findings, findingOf(err)) }

	// The bot and its own files, from disk or the embedded demo.
	var src fs.FS = bot
	root := "bot"
	if *botDir != "" {
		src, root = os.DirFS(*botDir), "."
	}
	if b, err := dialogs.Load(src, root); err != nil {
		fail(err)
	} else {
		bundle.Bot = b
	}
	display := func(p string) string { // a path as the user would open it
		if *botDir != "" {
			return filepath.Join(*botDir, p)
		}
		return path.Join("cmd/kefu", p) // the embedded demo's source
	}
	bundled := func(dir string, exts ...string) []string {
		var out []string
		entries, _ := fs.ReadDir(src, path.Join(root, dir))
		for _, e := range entries {
			for _, ext := range exts {
				if !e.IsDir() && strings.HasSuffix(e.Name(), ext) {
					out = append(out, path.Join(root, dir, e.Name()))
				}
			}
		}
		return out
	}
	read := func(p string, own bool) (string, []byte, error) {
		if own {
			data, err := fs.ReadFile(src, p)
			return display(p), data, err
		}
		data, err := os.ReadFile(p)
		return p, data, err
	}

	// The model's labels: only its manifest is read (no ONNX Runtime needed).
	var manifest []byte
	var err error
	if *modelDir != "" {
		manifest, err = os.ReadFile(filepath.Join(*modelDir, "model.json"))
	} else {
		manifest, err = fs.ReadFile(bot, "bot/model/model.json")
	}
	if err == nil {
		var m *models.Manifest
		if m, err = models.ParseManifest(manifest); err == nil {
			bundle.Labels = map[string][]string{}
			for _, h := range m.Heads {
				bundle.Labels[h.Name] = h.Labels
			}
		}
	}
	if err != nil {
		fail(fmt.Errorf("model: %w", err))
	}

	own := len(kbFiles) == 0
	if own {
		kbFiles = bundled("kb", ".yaml", ".yml", ".csv")
	}
	for _, p := range kbFiles {
		name, data, err := read(p, own)
		if err != nil {
			fail(err)
			continue
		}
		bundle.KB = append(bundle.KB, eval.KBFile{Name: name, Data: data})
	}

	own = len(storyPaths) == 0
	var storyList []string
	if own {
		storyList = bundled("tests", ".yaml", ".yml")
	} else {
		for _, p := range storyPaths {
			files, err := storyFiles(p)
			if err != nil {
				fail(err)
			}
			storyList = append(storyList, files...)
		}
	}
	for _, p := range storyList {
		name, data, err := read(p, own)
		if err == nil {
			var st []eval.Story
			if st, err = eval.ParseStories(name, data); err == nil {
				bundle.Stories = append(bundle.Stories, st...)
			}
		}
		if err != nil {
			fail(err)
		}
	}

	if len(dataPaths) == 0 {
		for _, p := range bundled("nlu", ".yaml", ".yml") {
			name, data, err := read(p, true)
			if err == nil {
				var ex []eval.Example
				if ex, err = eval.ParseNLU(name, data); err == nil {
					bundle.Training = append(bundle.Training, ex...)
				}
			}
			if err != nil {
				fail(err)
			}
		}
	} else {
		for _, head := range []string{"intent", "emotion"} {
			ex, err := eval.Load(dataPaths, eval.Source{}, head)
			if err != nil && !strings.Contains(err.Error(), "no "+head+" examples") {
				fail(err)
			}
			bundle.Training = append(bundle.Training, ex...)
		}
	}

	findings = append(findings, eval.Validate(bundle)...)
	for _, f := range findings {
		switch { // the bot's files as the user would open them
		case *botDir == "" && strings.HasPrefix(f.File, "bot/"): // the embedded demo's source
			f.File = "cmd/kefu/" + f.File
		case *botDir != "" && f.File != "" && !filepath.IsAbs(f.File) && fileIn(src, f.File):
			f.File = filepath.Join(*botDir, f.File)
		}
		fmt.Fprintln(stdout, f)
	}
	errs := eval.Errors(findings)
	fmt.Fprintf(stderr, "kefu validate: %d error(s), %d warning(s) in the bot, %d model heads, %d KB file(s), %d stories, %d training examples\n",
		errs, len(findings)-errs, len(bundle.Labels), len(bundle.KB), len(bundle.Stories), len(bundle.Training))
	if errs > 0 {
		return errValidation
	}
	return nil
}

func fileIn(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// errValidation: findings were printed; exit 1 without another message.
var errValidation = fmt.Errorf("validation failed")

// findingOf turns a load error (which names its file and line) into a finding.
func findingOf(err error) eval.Finding {
	return eval.Finding{Severity: eval.Error, File: "", Msg: err.Error()}
}

// checkBundle runs validate's bot-against-model checks for serve and reload: an error
// refuses the bundle, naming the first finding's file and line.
func checkBundle(b *dialogs.Bot, m *models.Manifest) error {
	labels := map[string][]string{}
	for _, h := range m.Heads {
		labels[h.Name] = h.Labels
	}
	findings := eval.Validate(eval.Bundle{Bot: b, Labels: labels})
	if n := eval.Errors(findings); n > 0 {
		for _, f := range findings {
			if f.Severity == eval.Error {
				more := ""
				if n > 1 {
					more = fmt.Sprintf(" (and %d more: run kefu validate)", n-1)
				}
				return fmt.Errorf("the bot does not fit the model %s: %s%s", m.Name, f, more)
			}
		}
	}
	return nil
}
