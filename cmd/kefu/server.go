package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/analytics"
	anbolt "github.com/kefu-ai/kefu/analytics/boltstore"
	anredis "github.com/kefu-ai/kefu/analytics/redisstore"
	"github.com/kefu-ai/kefu/conversation"
	convbolt "github.com/kefu-ai/kefu/conversation/boltstore"
	convmem "github.com/kefu-ai/kefu/conversation/inmem"
	convredis "github.com/kefu-ai/kefu/conversation/redisstore"
	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/handoff"
	boxbolt "github.com/kefu-ai/kefu/handoff/boltstore"
	boxredis "github.com/kefu-ai/kefu/handoff/redisstore"
	"github.com/kefu-ai/kefu/handoff/webhook"
	"github.com/kefu-ai/kefu/internal/redisx"
	"github.com/kefu-ai/kefu/kb"
	"github.com/kefu-ai/kefu/models"
)

// serverConfig is what a kefu server is built from: serve's flags, or kefu test's.
type serverConfig struct {
	// OpenRuntime opens ONNX Runtime (the --ort-lib flag's function).
	OpenRuntime func() (*models.Runtime, error)
	// ModelDir is the model bundle; "" the embedded demo model. Model tunes serving it.
	ModelDir string
	Model    models.Config
	// BotDir is the bot bundle; "" the embedded demo bot.
	BotDir string
	// HandoffURL receives handoffs; "" the bot's handoff.url; noDelivery decides handoffs
	// and delivers none.
	HandoffURL string
	// KBMinConfidence: KB answers below it are not called found.
	KBMinConfidence float64
	// StateTTL keeps idle conversations (and action results) this long; a conversation idle
	// that long has ended, for the figures.
	StateTTL time.Duration
	// Retention keeps the figures and their events this long (0: 90 days).
	Retention time.Duration
	// Transcript: with Redis, keep every turn in a stream of about this many entries.
	Transcript int64
	// RedisURL: conversations, outbox and KB on this Redis; "" in memory and the KB journal
	// under DataDir. RedisPrefix starts every key.
	RedisURL, RedisPrefix, DataDir string
	RedisTimeouts                  redisTimeouts
	Logger                         *slog.Logger
}

// noDelivery as the handoff URL decides handoffs but delivers none (kefu test).
const noDelivery = "-"

// server is a running kefu: the model, the knowledge base, the bot, the conversation store,
// the action record and the handoff outbox (delivering in the background) — everything but
// the HTTP listener.
type server struct {
	clf       *models.Classifier
	rt        *models.Runtime
	knowledge *kb.KB
	eng       *engine.Engine
	bot       string          // where the bot came from
	limiter   httpapi.Limiter // API keys' rates: shared in Redis with --redis

	closers []func()
	once    sync.Once
}

// open builds a server from cfg. On error, whatever was opened is closed again and the
// error says what failed (a bad bundle's file and line).
func open(ctx context.Context, cfg serverConfig) (*server, error) {
	s := &server{}
	if err := s.open(ctx, cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the outbox and closes what open opened, last first; safe to call twice.
func (s *server) Close() {
	s.once.Do(func() {
		for _, c := range slices.Backward(s.closers) {
			c()
		}
	})
}

func (s *server) onClose(f func()) { s.closers = append(s.closers, f) }

func (s *server) open(ctx context.Context, cfg serverConfig) error {
	log := cfg.Logger
	b, where, err := loadBot(cfg.BotDir)
	if err != nil {
		return err
	}
	s.bot = where
	var rdb redis.UniversalClient
	if cfg.RedisURL != "" {
		if rdb, err = connectRedis(ctx, cfg.RedisURL, cfg.RedisTimeouts); err != nil {
			return err
		}
		s.onClose(func() { rdb.Close() })
	}
	if s.rt, err = cfg.OpenRuntime(); err != nil {
		return err
	}
	s.onClose(func() { s.rt.Close() })
	if s.clf, err = loadModel(s.rt, cfg.ModelDir, cfg.Model); err != nil {
		return err
	}
	s.onClose(func() { s.clf.Close() })
	if err := checkBundle(b, s.clf.Manifest()); err != nil {
		if cfg.BotDir != "" {
			return fmt.Errorf("bot bundle %s: %w", where, err)
		}
		// A model dropped in beside the embedded demo bot (to serve /v1/nlu/parse, or to
		// try it) is no reason to refuse: the demo's flows simply will not start. A bundle
		// given with --bot must fit its model.
		log.Warn("the embedded demo bot does not fit this model: its flows and handoff intents will not fire; give --bot a bundle for this model", "err", err)
	}

	var db *bolt.DB // the single node's kefu.db: conversations, outbox, KB counters
	if rdb == nil {
		if db, err = openEmbedded(cfg.DataDir); err != nil {
			return err
		}
		s.onClose(func() { db.Close() })
	}
	st, kbWhere, closeKB, err := openKBStore(rdb, cfg.RedisPrefix, cfg.DataDir, db)
	if err != nil {
		return err
	}
	s.onClose(closeKB)
	if s.knowledge, err = kb.Open(ctx, st, kb.Options{MinConfidence: cfg.KBMinConfidence, Logger: log}); err != nil {
		return err
	}
	s.onClose(func() { s.knowledge.Close() })
	seeded, err := seedKB(ctx, s.knowledge)
	if err != nil {
		return fmt.Errorf("bundle kb: %w", err)
	}
	log.Info("knowledge base", "store", kbWhere, "searchable", s.knowledge.Len(), "seeded_from_bundle", seeded.Created)

	handoffURL := cfg.HandoffURL
	switch handoffURL {
	case "":
		handoffURL = b.Handoff.URL
	case noDelivery:
		handoffURL = ""
	}
	deliver, err := deliveries(b, handoffURL, log)
	if err != nil {
		return err
	}
	var (
		store   conversation.Store
		calls   dialogs.Recorder
		outbox  handoff.Outbox
		figures analytics.Store
		state   = "memory"
	)
	if rdb != nil {
		host, _ := os.Hostname()
		consumer := fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano()%100000)
		store = convredis.New(rdb, convredis.Options{Prefix: cfg.RedisPrefix, TTL: cfg.StateTTL, Transcript: cfg.Transcript})
		calls = convredis.NewCalls(rdb, cfg.RedisPrefix, cfg.StateTTL)
		outbox = boxredis.NewOutbox(rdb, cfg.RedisPrefix, consumer, b.Handoff.Options, func(err error) { log.Warn("outbox", "err", err) })
		state = "redis"
		s.limiter = httpapi.NewRedisLimiter(rdb, cfg.RedisPrefix, log)
		an := anredis.New(rdb, cfg.RedisPrefix, cfg.Retention)
		if err := an.Setup(ctx); err != nil {
			return fmt.Errorf("analytics: %w", err)
		}
		figures = an
	} else {
		// One node: conversations and the outbox in one embedded file, committed before
		// each answer, so that a crash loses no acknowledged turn or queued handoff.
		s.limiter = httpapi.NewLocalLimiter()
		if store, err = convbolt.New(db, cfg.StateTTL); err != nil {
			return err
		}
		if outbox, err = boxbolt.New(db, b.Handoff.Options); err != nil {
			return err
		}
		calls = convmem.NewCalls(cfg.StateTTL)
		if figures, err = anbolt.New(db); err != nil {
			return err
		}
		state = "embedded " + db.Path()
	}
	s.eng = engine.New(engine.Config{NLU: s.clf, Bot: dialogs.NewMachine(b, nil), Store: store, Outbox: outbox, Calls: calls, KB: s.knowledge, Logger: log,
		Analytics: analytics.NewRecorder(figures, nil), Idle: cfg.StateTTL, Retention: cfg.Retention})
	boxCtx, stopBox := context.WithCancel(context.Background())
	boxDone := make(chan struct{})
	go func() { defer close(boxDone); outbox.Run(boxCtx, deliver) }()
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); s.eng.Watch(boxCtx) }()
	s.onClose(func() { stopBox(); <-boxDone; <-watchDone })
	log.Info("bot", "bot", where, "flows", len(b.Flows), "state", state, "handoff_url", redactURL(handoffURL))
	return nil
}

// deliveries returns how handoffs reach handoffURL: signed POSTs, logged; without a URL
// they are logged and dropped.
func deliveries(b *dialogs.Bot, handoffURL string, log *slog.Logger) (handoff.Deliver, error) {
	if handoffURL == "" {
		return func(ctx context.Context, d handoff.Delivery) error {
			log.Info("handoff delivery without a handoff URL (dropped)", "key", d.Key, "kind", d.Kind)
			return nil
		}, nil
	}
	secrets, err := handoffSecrets(b, handoffURL, log)
	if err != nil {
		return nil, err
	}
	sender := &webhook.Sender{URL: handoffURL, Secrets: secrets, Client: &http.Client{}}
	return func(ctx context.Context, d handoff.Delivery) error {
		err := sender.Deliver(ctx, d)
		if err != nil {
			log.Warn("handoff delivery failed; will retry", "key", d.Key, "kind", d.Kind, "err", err)
		} else {
			log.Info("handoff delivered", "key", d.Key, "kind", d.Kind)
		}
		return err
	}, nil
}

// openEmbedded opens (creating) dataDir/kefu.db, the single node's conversations and
// outbox. A second process on the same folder is refused rather than waited for.
func openEmbedded(dataDir string) (*bolt.DB, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, "kefu.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s is in use by another kefu process (give each node its own --data-dir, or use --redis)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Concurrent turns share one commit (bbolt's Batch); a lone turn waits at most 2 ms for
	// company instead of bbolt's default 10.
	db.MaxBatchDelay = 2 * time.Millisecond
	return db, nil
}

// redisLog sends go-redis's own log lines (dial retries and the like) to slog at debug
// level instead of plain text on stderr: the errors that matter reach kefu's callers.
type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "redis client", "msg", fmt.Sprintf(format, v...))
}

func init() { redis.SetLogger(redisLog{}) }

// connectRedis returns a client for raw, checked with a PING. The URL's scheme says what
// kind of Redis it is:
//
//	redis://host:6379/0 (rediss:// for TLS, unix:///path)           one node
//	redis+cluster://host1:7000?addr=host2:7001&addr=host3:7002        a Redis Cluster, by seeds
//	redis+sentinel://s1:26379?addr=s2:26379&master_name=kefu          Sentinel's master "kefu"
//
// Every client gets the same timeouts (redisTimeouts) and one retry.
func connectRedis(ctx context.Context, raw string, t redisTimeouts) (redis.UniversalClient, error) {
	dial, io := cmp.Or(t.Dial, time.Second), cmp.Or(t.IO, 500*time.Millisecond)
	pool := io + dial // waiting for a free connection
	var rdb redis.UniversalClient
	var where string
	switch scheme, rest, _ := strings.Cut(raw, "://"); scheme {
	case "redis+cluster", "rediss+cluster":
		opt, err := redis.ParseClusterURL(strings.TrimSuffix(scheme, "+cluster") + "://" + rest)
		if err != nil {
			return nil, fmt.Errorf("--redis (cluster): %w", err)
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout, opt.MaxRetries = dial, io, io, pool, 1
		cc := redis.NewClusterClient(opt)
		redisx.FollowFailover(cc)
		rdb, where = cc, "the Redis Cluster seeded by "+strings.Join(opt.Addrs, ",")
	case "redis+sentinel", "rediss+sentinel":
		opt, err := redis.ParseFailoverURL(strings.TrimSuffix(scheme, "+sentinel") + "://" + rest)
		if err != nil {
			return nil, fmt.Errorf("--redis (sentinel): %w", err)
		}
		if opt.MasterName == "" {
			return nil, fmt.Errorf("--redis (sentinel): name the master with ?master_name=NAME")
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout, opt.MaxRetries = dial, io, io, pool, 1
		rdb, where = redis.NewFailoverClient(opt), fmt.Sprintf("Sentinel master %q via %s", opt.MasterName, strings.Join(opt.SentinelAddrs, ","))
	default:
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w (one node: redis://host:6379/0; a cluster: redis+cluster://host:7000?addr=host2:7001; Sentinel: redis+sentinel://host:26379?master_name=NAME)", err)
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout, opt.MaxRetries = dial, io, io, pool, 1 // a hung Redis: one more try, then 503
		rdb, where = redis.NewClient(opt), "redis at "+opt.Addr
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return rdb, nil
}

// loadModel loads the bundle in dir, or the embedded demo model when dir is empty.
func loadModel(rt *models.Runtime, dir string, cfg models.Config) (*models.Classifier, error) {
	if dir == "" {
		tmp, err := extractModel()
		if err != nil {
			return nil, fmt.Errorf("embedded model: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	return models.Load(rt, dir, cfg)
}

// openModel opens the ONNX Runtime and loads the bundle in dir (see loadModel); closeModel
// releases both.
func openModel(openRuntime func() (*models.Runtime, error), dir string, cfg models.Config) (clf *models.Classifier, rt *models.Runtime, closeModel func(), err error) {
	if rt, err = openRuntime(); err != nil {
		return nil, nil, nil, err
	}
	if clf, err = loadModel(rt, dir, cfg); err != nil {
		rt.Close()
		return nil, nil, nil, err
	}
	return clf, rt, func() { clf.Close(); rt.Close() }, nil
}
