package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/kefu-ai/kefu/dialogs"
	dialogsredis "github.com/kefu-ai/kefu/dialogs/redisstore"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/engine/webhook"
)

// devSecret signs handoffs when no secret is configured and every party is on this machine.
const devSecret = "kefu-dev-secret"

// loadBot reads the bot bundle in dir, or the embedded demo bot when dir is empty.
func loadBot(dir string) (*dialogs.Bot, string, error) {
	if dir == "" {
		b, err := dialogs.Load(bot, "bot")
		return b, "embedded demo bot", err
	}
	b, err := dialogs.Load(os.DirFS(dir), ".")
	if err != nil {
		return nil, "", fmt.Errorf("bot bundle %s: %w", dir, err)
	}
	return b, dir, nil
}

// conversationSetup is what serve needs to run conversations.
type conversationSetup struct {
	cfg    engine.Config
	runBox func(ctx context.Context) // runs the outbox until ctx ends
	where  string
}

// handoffSecret returns the handoff signing secret from the bot's environment variable;
// without one, only a loopback handoff URL is allowed (signed with the development secret).
func handoffSecret(b *dialogs.Bot, handoffURL string, log *slog.Logger) ([]byte, error) {
	if s := os.Getenv(b.Handoff.SecretEnv); s != "" {
		return []byte(s), nil
	}
	if handoffURL == "" {
		return nil, nil
	}
	u, err := url.Parse(handoffURL)
	if err != nil {
		return nil, fmt.Errorf("handoff URL %q: %w", handoffURL, err)
	}
	if !loopback(net.JoinHostPort(u.Hostname(), "0")) {
		return nil, fmt.Errorf("handoffs go to %s but $%s is empty: set the signing secret", u.Host, b.Handoff.SecretEnv)
	}
	log.Warn("handoffs are signed with the development secret: set $" + b.Handoff.SecretEnv + " for anything but a demo")
	return []byte(devSecret), nil
}

// setupConversations builds the state store and outbox (Redis when store has a client,
// else in memory) and the delivery to the handoff URL.
func setupConversations(b *dialogs.Bot, store *storeFlags, handoffURL string, ttl time.Duration, transcript int64, log *slog.Logger) (*conversationSetup, error) {
	secret, err := handoffSecret(b, handoffURL, log)
	if err != nil {
		return nil, err
	}
	opt := dialogs.OutboxOptions{Backoff: b.Handoff.Backoff, MaxAttempts: b.Handoff.MaxAttempts, Timeout: b.Handoff.Timeout}
	deliver := func(ctx context.Context, d dialogs.Delivery) error {
		log.Info("handoff delivery without a handoff URL (dropped)", "key", d.Key, "kind", d.Kind)
		return nil
	}
	if handoffURL != "" {
		s := &webhook.Sender{URL: handoffURL, Secret: secret, Client: &http.Client{}}
		deliver = s.Deliver
	}
	report := func(err error) { log.Warn("outbox", "err", err) }
	setup := &conversationSetup{}
	setup.cfg.Logger = log
	if store.rdb != nil {
		host, _ := os.Hostname()
		consumer := fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano()%100000)
		box := dialogsredis.NewOutbox(store.rdb, *store.prefix, consumer, opt)
		setup.cfg.Store = dialogsredis.New(store.rdb, dialogsredis.Options{Prefix: *store.prefix, TTL: ttl, Transcript: transcript})
		setup.cfg.Outbox = box
		setup.runBox = func(ctx context.Context) { box.Run(ctx, loggedDeliver(deliver, log), report) }
		setup.where = "redis"
		return setup, nil
	}
	box := dialogs.NewMemOutbox(opt)
	setup.cfg.Store = dialogs.NewMemStore(ttl)
	setup.cfg.Outbox = box
	setup.runBox = func(ctx context.Context) { box.Run(ctx, loggedDeliver(deliver, log)) }
	setup.where = "memory"
	return setup, nil
}

func loggedDeliver(deliver dialogs.Deliver, log *slog.Logger) dialogs.Deliver {
	return func(ctx context.Context, d dialogs.Delivery) error {
		err := deliver(ctx, d)
		if err != nil {
			log.Warn("handoff delivery failed; will retry", "key", d.Key, "kind", d.Kind, "err", err)
		} else {
			log.Info("handoff delivered", "key", d.Key, "kind", d.Kind)
		}
		return err
	}
}
