package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kefu-ai/kefu/analytics"
	anbolt "github.com/kefu-ai/kefu/analytics/boltstore"
	anredis "github.com/kefu-ai/kefu/analytics/redisstore"
)

const analyticsUsage = `Usage: kefu analytics export [flags] [FILE]

Writes every analytics event (turns, handoffs, acceptances, CSAT, ended conversations,
SLA breaches) of a period as JSON lines, for a warehouse; FILE "-" or none: stdout.
From Redis with --redis, else from --data-dir/kefu.db (stop the server first, or export
from it with GET /v1/analytics/events).

Flags:
`

// analyticsCmd is kefu analytics export.
func analyticsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("analytics export", "[flags] [FILE]", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, analyticsUsage); fs.PrintDefaults() }
	store := addStoreFlags(fs)
	from := fs.String("from", "", "start, RFC 3339 or YYYY-MM-DD (default: 7 days before --to)")
	to := fs.String("to", "", "end (exclusive), RFC 3339 or YYYY-MM-DD (default: now)")
	if err := envFlags(fs, "redis", "redis-prefix", "data-dir", "redis-timeout", "redis-dial-timeout"); err != nil {
		return err
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fs.Usage()
		return nil
	}
	if len(args) == 0 || args[0] != "export" {
		fs.Usage()
		return errUsage
	}
	files, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(files) > 1 {
		fmt.Fprintf(stderr, "kefu analytics export: one output file, got %d\n", len(files))
		return errUsage
	}
	end := time.Now().UTC()
	if *to != "" {
		if end, err = analytics.ParseTime(*to); err != nil {
			return fmt.Errorf("--to: %v", err)
		}
	}
	start := end.Add(-7 * 24 * time.Hour)
	if *from != "" {
		if start, err = analytics.ParseTime(*from); err != nil {
			return fmt.Errorf("--from: %v", err)
		}
	}
	if !start.Before(end) {
		return fmt.Errorf("--from (%s) must be before --to (%s)", start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	var st analytics.Store
	if *store.redisURL != "" {
		rdb, err := connectRedis(ctx, *store.redisURL, store.timeouts())
		if err != nil {
			return err
		}
		defer rdb.Close()
		st = anredis.New(rdb, *store.prefix, 0)
	} else {
		path := filepath.Join(*store.dataDir, "kefu.db")
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s: %w (give --data-dir of a kefu serve, or --redis)", path, err)
		}
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if errors.Is(err, bolt.ErrTimeout) {
			return fmt.Errorf("%s is in use by a running kefu: stop it, or export from it with GET /v1/analytics/events?from=…&to=… (admin key)", path)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer db.Close()
		s, err := anbolt.Open(db)
		if err != nil {
			return err
		}
		st = s
	}
	out, closeOut := stdout, func() error { return nil }
	if len(files) == 1 && files[0] != "-" {
		f, err := os.Create(files[0])
		if err != nil {
			return err
		}
		out, closeOut = f, f.Close
	}
	n, err := analytics.Export(ctx, st, start, end, out)
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "kefu analytics export: %d events from %s to %s\n", n, start.Format(time.RFC3339), end.Format(time.RFC3339))
	return nil
}
