package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
	"go.yaml.in/yaml/v3"

	"github.com/kefu-ai/kefu/engine/httpapi"
	"github.com/kefu-ai/kefu/kb"
	kbbolt "github.com/kefu-ai/kefu/kb/boltstore"
	"github.com/kefu-ai/kefu/kb/redisstore"
)

// storeFlags are the flags that say where state lives.
type storeFlags struct {
	redisURL *string
	prefix   *string
	dataDir  *string
	dial, io *time.Duration
}

func (f *storeFlags) timeouts() redisTimeouts { return redisTimeouts{Dial: *f.dial, IO: *f.io} }

// redisTimeouts bound every Redis call, so that a Redis that hangs fails a turn fast
// (503) instead of holding it.
type redisTimeouts struct {
	Dial, IO time.Duration
}

func addStoreFlags(fs *flag.FlagSet) *storeFlags {
	return &storeFlags{
		redisURL: fs.String("redis", "", "Redis: redis://host:6379/0 (one node), redis+cluster://host:7000?addr=host2:7001 (a cluster, by seeds), redis+sentinel://host:26379?addr=host2:26379&master_name=NAME (Sentinel); empty: everything under --data-dir (kefu.db, the KB journal)"),
		prefix:   fs.String("redis-prefix", "kefu", "prefix of every Redis key"),
		dataDir:  fs.String("data-dir", "kefu-data", "without Redis: where the knowledge base journal and kefu.db (conversations, handoff outbox) live"),
		dial:     fs.Duration("redis-dial-timeout", time.Second, "longest wait to connect to Redis"),
		io:       fs.Duration("redis-timeout", 500*time.Millisecond, "longest wait for one Redis reply (blocking reads add their own wait): a hung Redis fails a turn with 503 after about this"),
	}
}

// openKBStore returns the knowledge base store, where it is, and a function that closes it:
// on rdb when it is set, else the journal in dataDir, with its experiment counters in db
// when given (the single node's kefu.db).
func openKBStore(rdb redis.UniversalClient, prefix, dataDir string, db *bolt.DB) (kb.Store, string, func(), error) {
	if rdb != nil {
		return redisstore.New(rdb, redisstore.Options{Prefix: prefix}), "redis", func() {}, nil
	}
	j, err := kb.OpenJournal(dataDir)
	if err != nil {
		return nil, "", nil, fmt.Errorf("knowledge base in %s: %w", dataDir, err)
	}
	where := filepath.Join(dataDir, "kb.journal")
	if j.Recovered > 0 {
		slog.Warn("kb journal: dropped a torn last entry", "bytes", j.Recovered, "file", where)
	}
	if db != nil {
		counters, err := kbbolt.New(db)
		if err != nil {
			j.Close()
			return nil, "", nil, err
		}
		return journalCounting{j, counters}, where, func() { j.Close() }, nil
	}
	return j, where, func() { j.Close() }, nil
}

// journalCounting is the journal for articles with its experiment counters in kefu.db,
// committed as they change instead of saved at shutdown.
type journalCounting struct {
	*kb.Journal
	counters *kbbolt.Counters
}

func (j journalCounting) Expose(ctx context.Context, exp, variant, conv string) (bool, error) {
	return j.counters.Expose(ctx, exp, variant, conv)
}

func (j journalCounting) Outcome(ctx context.Context, exp, conv, kind string, fields map[string]int64) (bool, error) {
	return j.counters.Outcome(ctx, exp, conv, kind, fields)
}

func (j journalCounting) Counts(ctx context.Context, exp string) (map[string]kb.Counts, error) {
	return j.counters.Counts(ctx, exp)
}

func (j journalCounting) Forget(ctx context.Context, exp, conv string) error {
	return j.counters.Forget(ctx, exp, conv)
}

// seedKB imports the embedded bot bundle's kb/ articles whose ids the store does not hold
// yet: editors' changes win over the bundle.
func seedKB(ctx context.Context, k *kb.KB) (kb.ImportResult, error) {
	var all []kb.Article
	err := fs.WalkDir(bot, "bot/kb", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := bot.ReadFile(path)
		if err != nil {
			return err
		}
		arts, err := kb.ParseYAML(path, data)
		all = append(all, arts...)
		return err
	})
	if err != nil {
		return kb.ImportResult{}, err
	}
	res, err := k.Import(ctx, all, "bundle", true)
	if errors.Is(err, kb.ErrConflict) { // another node seeded at the same moment
		return res, nil
	}
	return res, err
}

// loadKeys reads the API keys file:
//
//	keys:
//	  - name: web-frontend
//	    role: client            # client, editor or admin
//	    key_sha256: 9f86d0…     # or key: the secret itself (≥ 16 characters)
//	    rate: 50                # requests/s, 0 = unlimited
//	    burst: 100
func loadKeys(path string) ([]httpapi.Key, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Keys []httpapi.Key `yaml:"keys"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	seen := map[string]bool{}
	for i, k := range doc.Keys {
		if err := k.Check(); err != nil {
			return nil, fmt.Errorf("%s: keys[%d]: %w", path, i, err)
		}
		if seen[k.Name] {
			return nil, fmt.Errorf("%s: keys[%d]: name %q appears twice", path, i, k.Name)
		}
		seen[k.Name] = true
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", path)
	}
	return doc.Keys, nil
}

const kbUsage = `Usage:
  kefu kb import [flags] FILE...   import articles (YAML or CSV), all or nothing
  kefu kb export [flags]           write every article as YAML or CSV

Both work on the store directly, no server needed: with --redis every running node picks
the change up within a second. Run 'kefu kb import --help' for the flags.
`

// kbCmd edits the knowledge base's store directly (no server needed; with --redis every
// running node picks the change up within a second).
func kbCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "help"}, args[0]) {
		fmt.Fprint(stderr, kbUsage)
		return nil
	}
	if len(args) == 0 || (args[0] != "import" && args[0] != "export") {
		fmt.Fprint(stderr, kbUsage)
		return errUsage
	}
	sub := args[0]
	fset := newFlags("kb "+sub, "[flags] FILE...", stderr)
	store := addStoreFlags(fset)
	format := fset.String("format", "", "yaml or csv (default: from the file name; yaml for export)")
	out := fset.String("out", "", "export: write here instead of stdout")
	author := fset.String("author", envOr("USER", "cli"), "the name the audit log records")
	if err := envFlags(fset, "redis", "redis-prefix", "data-dir", "redis-timeout", "redis-dial-timeout"); err != nil {
		return err
	}
	files, err := parseArgs(fset, args[1:])
	if err != nil {
		return err
	}
	if sub == "import" && len(files) == 0 {
		fmt.Fprintln(stderr, "kefu kb import: name at least one file")
		return errUsage
	}
	if sub == "export" && len(files) > 0 {
		fmt.Fprintf(stderr, "kefu kb export: unexpected argument %q\n", files[0])
		return errUsage
	}
	var rdb redis.UniversalClient
	if *store.redisURL != "" {
		if rdb, err = connectRedis(ctx, *store.redisURL, store.timeouts()); err != nil {
			return err
		}
		defer rdb.Close()
	}
	st, where, closeStore, err := openKBStore(rdb, *store.prefix, *store.dataDir, nil) // articles only: no counters
	if err != nil {
		return err
	}
	defer closeStore()
	k, err := kb.Open(ctx, st, kb.Options{})
	if err != nil {
		return err
	}
	defer k.Close()

	if sub == "export" {
		w := stdout
		if *out != "" {
			f, err := os.Create(*out)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
			if *format == "" && strings.HasSuffix(*out, ".csv") {
				*format = "csv"
			}
		}
		switch *format {
		case "", "yaml":
			return kb.WriteYAML(w, k.List(kb.Filter{}))
		case "csv":
			return kb.WriteCSV(w, k.List(kb.Filter{}))
		}
		return fmt.Errorf("--format must be yaml or csv, got %q", *format)
	}

	var all []kb.Article
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f := *format
		if f == "" {
			f = "yaml"
			if strings.HasSuffix(strings.ToLower(path), ".csv") {
				f = "csv"
			}
		}
		var arts []kb.Article
		switch f {
		case "yaml":
			arts, err = kb.ParseYAML(path, data)
		case "csv":
			arts, err = kb.ParseCSV(path, data)
		default:
			return fmt.Errorf("--format must be yaml or csv, got %q", f)
		}
		if err != nil {
			return err
		}
		all = append(all, arts...)
	}
	res, err := k.Import(ctx, all, *author, false)
	if err != nil {
		return fmt.Errorf("nothing imported: %w", err)
	}
	fmt.Fprintf(stdout, "imported into %s: %d created, %d updated, %d unchanged\n", where, res.Created, res.Updated, res.Unchanged)
	return nil
}
