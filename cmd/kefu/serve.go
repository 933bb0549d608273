package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/kb"
	"github.com/kefu-ai/kefu/models"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", "[flags]", stderr)
	addr := fs.String("addr", envOr("KEFU_ADDR", "127.0.0.1:8080"), "address to listen on ($KEFU_ADDR)")
	modelDir := fs.String("model", os.Getenv("KEFU_MODEL"), "model bundle directory ($KEFU_MODEL; default: the embedded demo model)")
	bodyLimit := fs.Int64("body-limit", 1<<20, "largest request body in bytes")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	keysFile := fs.String("keys", os.Getenv("KEFU_KEYS"), "API keys file (YAML; $KEFU_KEYS); without one kefu only serves a loopback address")
	minConf := fs.Float64("kb-min-confidence", 0.3, "KB answers below this confidence are not called found")
	botDir := fs.String("bot", os.Getenv("KEFU_BOT"), "bot bundle directory with bot.yaml and dialogs/ ($KEFU_BOT; default: the embedded demo bot); SIGHUP reloads it")
	handoffURL := fs.String("handoff-url", os.Getenv("KEFU_HANDOFF_URL"), "where handoffs are POSTed ($KEFU_HANDOFF_URL; default: the bot's handoff.url)")
	stateTTL := fs.Duration("state-ttl", 24*time.Hour, "how long an idle conversation is kept")
	transcript := fs.Int64("transcript", 0, "with --redis, keep every turn in a stream trimmed to about this many entries (0: only the last 50 turns in the state)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here (for load tests)")
	store := addStoreFlags(fs)
	openRuntime := ortFlag(fs)
	cfg := modelFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	cfg.Logger = log

	keys, err := loadKeys(*keysFile)
	if err != nil {
		return err
	}
	if len(keys) == 0 && !loopback(*addr) {
		return fmt.Errorf("refusing to serve %s without API keys: give --keys FILE, or bind a loopback address such as 127.0.0.1:8080", *addr)
	}
	if *minConf <= 0 || *minConf > 1 {
		return fmt.Errorf("--kb-min-confidence must be in (0, 1], got %v", *minConf)
	}

	clf, rt, closeModel, err := openModel(openRuntime, *modelDir, *cfg)
	if err != nil {
		return err
	}
	defer closeModel()

	a, err := assemble(ctx, clf, store, *botDir, *handoffURL, *minConf, *stateTTL, *transcript, log)
	if err != nil {
		return err
	}
	defer a.close()
	eng, knowledge := a.eng, a.knowledge
	reload := func() (string, error) {
		nb, where, err := loadBot(*botDir)
		if err != nil {
			return "", err
		}
		eng.SetBot(dialogs.NewMachine(nb, nil))
		log.Info("bot reloaded", "bot", where, "flows", len(nb.Flows))
		return where, nil
	}
	if *botDir == "" {
		reload = nil
	} else {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for range hup {
				if _, err := reload(); err != nil {
					log.Error("bot reload refused; the running bot stays", "err", err)
				}
			}
		}()
	}

	api, err := httpapi.New(eng, httpapi.Config{BodyLimit: *bodyLimit, Logger: log, Keys: keys, KB: knowledge, Reload: reload, Version: version})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		log.Warn("no API keys configured: every route is open to anyone who can reach " + ln.Addr().String())
	}
	m := clf.Manifest()
	log.Info("kefu serving", "addr", ln.Addr().String(), "model", m.Name, "model_version", m.Version,
		"provider", clf.Provider(), "onnxruntime", rt.Version(), "version", version)
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openModel opens the ONNX Runtime and loads the bundle in dir, or the embedded demo model
// when dir is empty. closeModel releases both.
func openModel(openRuntime func() (*models.Runtime, error), dir string, cfg models.Config) (clf *models.Classifier, rt *models.Runtime, closeModel func(), err error) {
	if rt, err = openRuntime(); err != nil {
		return nil, nil, nil, err
	}
	if dir == "" {
		tmp, err := extractModel()
		if err != nil {
			rt.Close()
			return nil, nil, nil, fmt.Errorf("embedded model: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if clf, err = models.Load(rt, dir, cfg); err != nil {
		rt.Close()
		return nil, nil, nil, err
	}
	return clf, rt, func() { clf.Close(); rt.Close() }, nil
}

// loopback says whether addr (host:port) only listens on a loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// noDelivery as assemble's handoff URL decides handoffs but delivers none (kefu test).
const noDelivery = "-"

// assembly is a running engine: knowledge base, bot, state store and outbox.
type assembly struct {
	eng       *engine.Engine
	knowledge *kb.KB
	close     func()
}

// assemble builds the engine that serve (and kefu test, in process) runs: the knowledge
// base seeded from the bundle, the bot (--bot or the embedded demo), the state store and the
// outbox delivering to handoffURL (default: the bot's handoff.url), running until close.
func assemble(ctx context.Context, clf *models.Classifier, store *storeFlags, botDir, handoffURL string, minConf float64, ttl time.Duration, transcript int64, log *slog.Logger) (a *assembly, err error) {
	var closers []func()
	a = &assembly{close: func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	st, where, closeStore, err := store.open(ctx)
	if err != nil {
		return nil, err
	}
	closers = append(closers, closeStore)
	if a.knowledge, err = kb.Open(ctx, st, kb.Options{MinConfidence: minConf, Logger: log}); err != nil {
		return nil, err
	}
	closers = append(closers, func() { a.knowledge.Close() })
	seeded, err := seedKB(ctx, a.knowledge)
	if err != nil {
		return nil, fmt.Errorf("bundle kb: %w", err)
	}
	log.Info("knowledge base", "store", where, "searchable", a.knowledge.Len(), "seeded_from_bundle", seeded.Created)
	b, botWhere, err := loadBot(botDir)
	if err != nil {
		return nil, err
	}
	switch handoffURL {
	case "":
		handoffURL = b.Handoff.URL
	case noDelivery:
		handoffURL = ""
	}
	conv, err := setupConversations(b, store, handoffURL, ttl, transcript, log)
	if err != nil {
		return nil, err
	}
	a.eng = engine.New(clf)
	conv.cfg.Bot = dialogs.NewMachine(b, nil)
	conv.cfg.KB = a.knowledge
	a.eng.Configure(conv.cfg)
	boxCtx, stopBox := context.WithCancel(context.Background())
	boxDone := make(chan struct{})
	go func() { defer close(boxDone); conv.runBox(boxCtx) }()
	closers = append(closers, func() { stopBox(); <-boxDone })
	log.Info("bot", "bot", botWhere, "flows", len(b.Flows), "state", conv.where, "handoff_url", handoffURL)
	return a, nil
}
