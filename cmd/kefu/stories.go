package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kefu-ai/kefu/eval"
)

var errStoriesFailed = errors.New("stories failed")

// testCmd runs conversation test stories against the bot in this process or a running server.
func testCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("test", "[--bot DIR | --url URL] [flags] STORIES.yaml|DIR…", stderr)
	botDir := fs.String("bot", "", "bot bundle to test in this process (default: the embedded demo bot)")
	modelDir := fs.String("model", "", "model bundle for the in-process bot (default: the embedded demo model)")
	serverURL := fs.String("url", "", "test a running kefu serve at this base URL instead, e.g. http://127.0.0.1:8080")
	key := fs.String("key", os.Getenv("KEFU_API_KEY"), "API key for --url ($KEFU_API_KEY)")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	openRuntime := ortFlag(fs)
	cfg := modelFlags(fs)
	paths, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "kefu test: name story files or folders")
		fs.Usage()
		return errUsage
	}
	if *serverURL != "" && (*botDir != "" || *modelDir != "") {
		return fmt.Errorf("--url tests a running server: --bot and --model are for the in-process bot")
	}
	var stories []eval.Story
	for _, p := range paths {
		files, err := storyFiles(p)
		if err != nil {
			return err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			s, err := eval.ParseStories(f, data)
			if err != nil {
				return err
			}
			stories = append(stories, s...)
		}
	}
	var chat eval.Chat
	if *serverURL != "" {
		chat = &eval.HTTPChat{URL: *serverURL, Key: *key}
		if err := checkReady(ctx, *serverURL); err != nil {
			return err
		}
	} else {
		tmp, err := os.MkdirTemp("", "kefu-test-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		// No handoff URL: handoffs are decided and checked, not delivered.
		srv, err := open(ctx, serverConfig{OpenRuntime: openRuntime, ModelDir: *modelDir, Model: *cfg, BotDir: *botDir,
			HandoffURL: noDelivery, KBMinConfidence: 0.3, StateTTL: time.Hour, DataDir: tmp, RedisPrefix: "kefu", Logger: log})
		if err != nil {
			return err
		}
		defer srv.Close()
		chat = srv.eng
	}
	run := time.Now().UnixMilli()
	var results []eval.StoryResult
	failed := 0
	for i, st := range stories {
		id := fmt.Sprintf("story-%d-%d", run, i+1)
		r := eval.RunStory(ctx, chat, st, id)
		if !r.Passed {
			failed++
		}
		results = append(results, r)
	}
	eval.WriteStoryResults(stdout, results)
	if *jsonOut != "" {
		data, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", errStoriesFailed, failed, len(results))
	}
	return nil
}

// storyFiles is path itself, or the .yaml/.yml files in the folder path.
func storyFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var out []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(path, pat))
		out = append(out, m...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no .yaml story files", path)
	}
	return out, nil
}

// checkReady asks a server's /readyz once, so that an unreachable URL is one clear error.
func checkReady(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("--url %q: %w", base, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach kefu at %s: %w", base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kefu at %s is not ready: /readyz answered %s", base, resp.Status)
	}
	return nil
}
