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
	"syscall"
	"time"

	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/engine/httpapi"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", "[flags]", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	modelDir := fs.String("model", "", "model bundle directory (default: the embedded demo model)")
	bodyLimit := fs.Int64("body-limit", 1<<20, "largest request body in bytes")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	keysFile := fs.String("keys", "", "API keys file (YAML); without one kefu only serves a loopback address")
	minConf := fs.Float64("kb-min-confidence", 0.3, "KB answers below this confidence are not called found")
	botDir := fs.String("bot", "", "bot bundle directory with bot.yaml and dialogs/ (default: the embedded demo bot); SIGHUP reloads it")
	handoffURL := fs.String("handoff-url", "", "where handoffs are POSTed (default: the bot's handoff.url)")
	corsOrigins := fs.String("cors-origins", "", "browser origins allowed to call the API, comma-separated, each scheme://host[:port] (default: none)")
	readTimeout := fs.Duration("read-timeout", 30*time.Second, "longest time to read a request, body included (a slow client is cut off)")
	writeTimeout := fs.Duration("write-timeout", 60*time.Second, "longest time from the end of the request headers to the end of the answer")
	idleTimeout := fs.Duration("idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	openMetrics := fs.Bool("metrics-public", false, "serve /metrics without a key (for a Prometheus on a private network; default: admin key)")
	stateTTL := fs.Duration("state-ttl", 24*time.Hour, "how long an idle conversation is kept")
	retention := fs.Duration("analytics-retention", 90*24*time.Hour, "how long the service's figures (GET /v1/analytics/…) and their events are kept")
	transcript := fs.Int64("transcript", 0, "with --redis, keep every turn in a stream trimmed to about this many entries (0: only the last 50 turns in the state)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here (for load tests)")
	store := addStoreFlags(fs)
	openRuntime := ortFlag(fs)
	cfg := modelFlags(fs)
	if err := envFlags(fs); err != nil {
		return err
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	origins, err := httpapi.ParseOrigins(*corsOrigins)
	if err != nil {
		return fmt.Errorf("--cors-origins ($KEFU_CORS_ORIGINS): %v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
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
	if *retention < 24*time.Hour {
		return fmt.Errorf("--analytics-retention must be at least 24h, got %v", *retention)
	}
	if *minConf <= 0 || *minConf > 1 {
		return fmt.Errorf("--kb-min-confidence must be in (0, 1], got %v", *minConf)
	}

	srv, err := open(ctx, serverConfig{OpenRuntime: openRuntime, ModelDir: *modelDir, Model: *cfg, BotDir: *botDir,
		HandoffURL: *handoffURL, KBMinConfidence: *minConf, StateTTL: *stateTTL, Transcript: *transcript, Retention: *retention,
		RedisURL: *store.redisURL, RedisPrefix: *store.prefix, DataDir: *store.dataDir, RedisTimeouts: store.timeouts(), Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	eng, knowledge, clf := srv.eng, srv.knowledge, srv.clf
	reload := func() (string, error) {
		nb, where, err := loadBot(*botDir)
		if err != nil {
			return "", err
		}
		if err := checkBundle(nb, clf.Manifest()); err != nil {
			return "", err
		}
		// Deliveries were set up at start; a reload cannot move them, so it says so.
		old := eng.Bot().Bot().Handoff
		if *handoffURL == "" && (nb.Handoff.URL != old.URL || nb.Handoff.SecretEnv != old.SecretEnv) {
			return "", fmt.Errorf("handoff.url or handoff.secret_env changed (%s → %s): restart kefu to send handoffs elsewhere", redactURL(old.URL), redactURL(nb.Handoff.URL))
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

	api, err := httpapi.New(eng, httpapi.Config{BodyLimit: *bodyLimit, Logger: log, Keys: keys, KB: knowledge, Reload: reload, Version: version, Limiter: srv.limiter, CORSOrigins: origins, OpenMetrics: *openMetrics})
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
	log.Info("kefu serving", "addr", ln.Addr().String(), "console", "http://"+ln.Addr().String()+"/console/", "model", m.Name, "model_version", m.Version,
		"provider", clf.Provider(), "onnxruntime", srv.rt.Version(), "version", version)
	hs := &http.Server{Handler: api, ReadHeaderTimeout: min(10*time.Second, *readTimeout), ReadTimeout: *readTimeout,
		WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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
