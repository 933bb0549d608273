package main

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

// bot is the embedded demo bundle: NLU examples and the model built from them.
//
//go:embed bot
var bot embed.FS

// extractModel writes the embedded model to a new temporary directory (ONNX Runtime and the
// tokenizer read files) and returns it; the caller removes it once the model is loaded.
func extractModel() (string, error) {
	dir, err := os.MkdirTemp("", "kefu-model-*")
	if err != nil {
		return "", err
	}
	err = fs.WalkDir(bot, "bot/model", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := bot.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, d.Name()), data, 0o644)
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}
