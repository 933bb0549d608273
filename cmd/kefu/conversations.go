package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"

	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/handoff/webhook"
)

// devSecret signs handoffs when no secret is configured and every party is on this machine.
const devSecret = "kefu-dev-secret"

// MinSecretBytes is the shortest signing secret for a handoff URL off this machine.
const MinSecretBytes = 32

// redactURL is a URL as logs may show it: no user, password or query (they hold tokens).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}

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

// handoffSecrets returns the handoff signing secrets from the bot's environment variable
// (a list: see webhook.ParseSecrets); without one, only a loopback handoff URL is allowed
// (signed with the development secret).
func handoffSecrets(b *dialogs.Bot, handoffURL string, log *slog.Logger) ([][]byte, error) {
	if handoffURL == "" {
		return nil, nil
	}
	u, err := url.Parse(handoffURL)
	if err != nil {
		return nil, fmt.Errorf("handoff URL %s does not parse", redactURL(handoffURL))
	}
	local := loopback(net.JoinHostPort(u.Hostname(), "0"))
	if s := os.Getenv(b.Handoff.SecretEnv); s != "" {
		secrets, err := webhook.ParseSecrets(s)
		if err != nil {
			return nil, fmt.Errorf("$%s: %v", b.Handoff.SecretEnv, err)
		}
		for i, sec := range secrets {
			if len(sec) < MinSecretBytes && !local {
				return nil, fmt.Errorf("$%s: secret %d is %d bytes; handoffs to %s need at least %d (head -c 32 /dev/urandom | base64)", b.Handoff.SecretEnv, i+1, len(sec), u.Host, MinSecretBytes)
			}
		}
		return secrets, nil
	}
	if !local {
		return nil, fmt.Errorf("handoffs go to %s but $%s is empty: set the signing secret", u.Host, b.Handoff.SecretEnv)
	}
	log.Warn("handoffs are signed with the development secret: set $" + b.Handoff.SecretEnv + " for anything but a demo")
	return [][]byte{[]byte(devSecret)}, nil
}
