package kb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Options tune a knowledge base. The zero value is the default.
type Options struct {
	// MinConfidence is the Hit.Confidence an answer needs to count as found; default 0.3
	// (on the bundled KB: 199 of 240 paraphrases found with the right article, 1 of 30
	// off-topic questions found; kb/ranking_test.go).
	MinConfidence float64
	// Logger reports store failures and resynchronisation; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// RetryWait is how long to wait before reloading after the store's change feed fails;
	// default 1 s.
	RetryWait time.Duration
}

// KB is a knowledge base: the articles and experiments of a Store, kept in memory and in a
// search index that follows every change made on any node.
type KB struct {
	store Store
	opt   Options
	idx   *Index

	wmu         sync.Mutex // orders applying changes
	mu          sync.RWMutex
	articles    map[string]*Article
	experiments map[string]*Experiment
	versions    map[string]int64 // by Change.Key, deleted articles included
	generation  string           // the store content's generation when loaded

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Open loads the store into a new index and starts following its changes.
func Open(ctx context.Context, store Store, opt Options) (*KB, error) {
	if opt.MinConfidence == 0 {
		opt.MinConfidence = 0.3
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.RetryWait == 0 {
		opt.RetryWait = time.Second
	}
	k := &KB{store: store, opt: opt, done: make(chan struct{})}
	snap, err := k.load(ctx)
	if err != nil {
		return nil, err
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	go k.follow(watchCtx, snap.Cursor)
	return k, nil
}

// reload loads the store again after its change feed failed. A store that lost its data
// (it had a generation, now it has none: a Redis restarted without persistence) is not
// loaded: the KB keeps serving its last copy and writes it back, articles and experiments
// at version 1 (another node doing the same at once makes this one's write a harmless
// conflict), then loads that.
func (k *KB) reload(ctx context.Context) (*Snapshot, error) {
	snap, err := k.store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("kb load: %w", err)
	}
	k.mu.RLock()
	had := k.generation
	var changes []Change
	if had != "" && snap.Generation == "" {
		now := k.opt.Now()
		audit := AuditEntry{Time: now, Actor: "kefu", Action: "reseed"}
		for _, a := range k.articles {
			c := *a
			c.Version = 1
			changes = append(changes, Change{Article: &c, Audit: AuditEntry{Time: now, Actor: audit.Actor, Action: audit.Action, Kind: "article", ID: c.ID, Version: 1}})
		}
		for _, e := range k.experiments {
			c := *e
			c.Version = 1
			changes = append(changes, Change{Experiment: &c, Audit: AuditEntry{Time: now, Actor: audit.Actor, Action: audit.Action, Kind: "experiment", ID: c.ID, Version: 1}})
		}
	}
	k.mu.RUnlock()
	if changes == nil {
		return k.loaded(snap)
	}
	k.opt.Logger.Error("kb store lost its data (a Redis without persistence restarted?): serving the last copy and writing it back",
		"records", len(changes))
	// One record at a time: another node writing back its copy at the same moment makes
	// only the records it wrote first conflict, and each node adds what the other lacks.
	for _, c := range changes {
		if err := k.store.Commit(ctx, []Change{c}); err != nil && !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("kb re-seed: %w", err)
		}
	}
	return k.load(ctx)
}

// load replaces the in-memory state and the index with the store's content.
func (k *KB) load(ctx context.Context) (*Snapshot, error) {
	snap, err := k.store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("kb load: %w", err)
	}
	return k.loaded(snap)
}

// loaded replaces the in-memory state and the index with snap.
func (k *KB) loaded(snap *Snapshot) (*Snapshot, error) {
	idx, err := NewIndex()
	if err != nil {
		return nil, err
	}
	articles := map[string]*Article{}
	versions := snap.Versions
	if versions == nil {
		versions = map[string]int64{}
	}
	batch := make([]*Article, 0, 1000)
	for i := range snap.Articles {
		a := &snap.Articles[i]
		articles[a.ID], versions["article:"+a.ID] = a, a.Version
		if batch = append(batch, a); len(batch) == cap(batch) || i == len(snap.Articles)-1 {
			if err := idx.Put(batch...); err != nil {
				idx.Close()
				return nil, err
			}
			batch = batch[:0]
		}
	}
	if len(snap.Articles) > cap(batch) { // more than one batch: merge them before searches see the index
		if err := idx.Compact(context.Background()); err != nil {
			idx.Close()
			return nil, err
		}
	}
	experiments := map[string]*Experiment{}
	for i := range snap.Experiments {
		e := &snap.Experiments[i]
		experiments[e.ID], versions["experiment:"+e.ID] = e, e.Version
	}
	k.wmu.Lock()
	k.mu.Lock()
	old := k.idx
	k.idx, k.articles, k.experiments, k.versions, k.generation = idx, articles, experiments, versions, snap.Generation
	k.mu.Unlock()
	k.wmu.Unlock()
	if old != nil {
		old.Close()
	}
	return snap, nil
}

// follow applies other nodes' changes; when the feed fails it reloads everything.
func (k *KB) follow(ctx context.Context, cursor string) {
	defer close(k.done)
	for {
		err := k.store.Watch(ctx, cursor, func(c Change) { k.apply(c) })
		if ctx.Err() != nil {
			return
		}
		k.opt.Logger.Warn("kb change feed failed; reloading", "err", err)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(k.opt.RetryWait):
			}
			snap, err := k.reload(ctx)
			if err == nil {
				cursor = snap.Cursor
				break
			}
			k.opt.Logger.Warn("kb reload failed", "err", err)
		}
	}
}

// apply brings one change into memory and the index unless a newer version is there.
func (k *KB) apply(changes ...Change) {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	var put []*Article
	k.mu.Lock()
	if k.generation == "" && len(changes) > 0 {
		k.generation = "written" // the store has content now, so it has a generation
	}
	for _, c := range changes {
		if c.Version() <= k.versions[c.Key()] {
			continue
		}
		k.versions[c.Key()] = c.Version()
		switch {
		case c.Article != nil && c.Article.Deleted:
			delete(k.articles, c.Article.ID)
			put = append(put, c.Article)
		case c.Article != nil:
			a := *c.Article
			k.articles[a.ID] = &a
			put = append(put, &a)
		default:
			e := *c.Experiment
			k.experiments[e.ID] = &e
		}
	}
	idx := k.idx
	k.mu.Unlock()
	if len(put) > 0 {
		if err := idx.Put(put...); err != nil {
			k.opt.Logger.Error("kb index update failed", "err", err)
		}
	}
}

// commit writes changes to the store and, once stored, applies them here.
func (k *KB) commit(ctx context.Context, changes ...Change) error {
	if err := k.store.Commit(ctx, changes); err != nil {
		return err
	}
	k.apply(changes...)
	return nil
}

// Close stops following the store and releases the index (not the store); safe twice.
func (k *KB) Close() error {
	k.once.Do(func() {
		k.cancel()
		<-k.done
		k.mu.Lock()
		k.idx.Close()
		k.mu.Unlock()
	})
	return nil
}

// Filter selects articles in List.
type Filter struct {
	Status Status // "" for any
	Tag    string // "" for any
}

// List returns the current articles that pass f, by id.
func (k *KB) List(f Filter) []Article {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]Article, 0, len(k.articles))
	for _, a := range k.articles {
		if (f.Status == "" || a.Status == f.Status) && (f.Tag == "" || slices.Contains(a.Tags, f.Tag)) {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(a, b Article) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Get returns the current version of an article.
func (k *KB) Get(id string) (Article, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	a, ok := k.articles[id]
	if !ok {
		return Article{}, fmt.Errorf("article %q: %w", id, ErrNotFound)
	}
	return *a, nil
}

// version is the latest version of a record known here, deleted ones included.
func (k *KB) version(key string) int64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.versions[key]
}

func (k *KB) audit(actor, action, kind, id string, version int64) AuditEntry {
	return AuditEntry{Time: k.opt.Now().UTC(), Actor: actor, Action: action, Kind: kind, ID: id, Version: version}
}

// Create adds a new article; ErrConflict if the id exists.
func (k *KB) Create(ctx context.Context, a Article, actor string) (Article, error) {
	if err := a.Validate(); err != nil {
		return Article{}, err
	}
	if _, err := k.Get(a.ID); err == nil {
		return Article{}, fmt.Errorf("article %q exists already: %w", a.ID, ErrConflict)
	}
	now := k.opt.Now().UTC()
	a.Version, a.Author, a.CreatedAt, a.UpdatedAt, a.Deleted = k.version("article:"+a.ID)+1, actor, now, now, false
	return a, k.commit(ctx, Change{Article: &a, Audit: k.audit(actor, "create", "article", a.ID, a.Version)})
}

// Update replaces an article. ifVersion, when not 0, must be the current version
// (optimistic locking); otherwise the version known on this node is assumed.
func (k *KB) Update(ctx context.Context, a Article, actor string, ifVersion int64) (Article, error) {
	if err := a.Validate(); err != nil {
		return Article{}, err
	}
	cur, err := k.Get(a.ID)
	if err != nil {
		return Article{}, err
	}
	if ifVersion != 0 && ifVersion != cur.Version {
		return Article{}, fmt.Errorf("article %q is at version %d, not %d: %w", a.ID, cur.Version, ifVersion, ErrConflict)
	}
	if e := k.runningExperiment(a.ID); e != nil {
		for _, v := range e.Variants {
			if !hasVariant(&a, v.Answer) {
				return Article{}, fmt.Errorf("experiment %q runs on answer variant %q; stop it first: %w", e.ID, v.Answer, ErrConflict)
			}
		}
	}
	a.Version, a.Author, a.CreatedAt, a.UpdatedAt = cur.Version+1, actor, cur.CreatedAt, k.opt.Now().UTC()
	return a, k.commit(ctx, Change{Article: &a, Audit: k.audit(actor, "update", "article", a.ID, a.Version)})
}

// Publish makes an article searchable.
func (k *KB) Publish(ctx context.Context, id, actor string) (Article, error) {
	a, err := k.Get(id)
	if err != nil {
		return Article{}, err
	}
	a.Status, a.Version, a.Author, a.UpdatedAt = Published, a.Version+1, actor, k.opt.Now().UTC()
	return a, k.commit(ctx, Change{Article: &a, Audit: k.audit(actor, "publish", "article", a.ID, a.Version)})
}

// Delete removes an article (its history stays). ifVersion as in Update.
func (k *KB) Delete(ctx context.Context, id, actor string, ifVersion int64) error {
	a, err := k.Get(id)
	if err != nil {
		return err
	}
	if ifVersion != 0 && ifVersion != a.Version {
		return fmt.Errorf("article %q is at version %d, not %d: %w", id, a.Version, ifVersion, ErrConflict)
	}
	if e := k.runningExperiment(id); e != nil {
		return fmt.Errorf("experiment %q runs on article %q; stop it first: %w", e.ID, id, ErrConflict)
	}
	a.Version, a.Author, a.UpdatedAt, a.Deleted = a.Version+1, actor, k.opt.Now().UTC(), true
	return k.commit(ctx, Change{Article: &a, Audit: k.audit(actor, "delete", "article", id, a.Version)})
}

// ImportResult counts what an import did.
type ImportResult struct {
	Created   int `json:"created" required:"true"`
	Updated   int `json:"updated" required:"true"`
	Unchanged int `json:"unchanged" required:"true"`
}

// Import creates or updates many articles in one atomic commit: all or nothing. Articles
// identical to the current version are left alone. With onlyNew, existing articles are
// left alone too (how the bot bundle's kb/ folder is loaded: editors' changes win).
func (k *KB) Import(ctx context.Context, articles []Article, actor string, onlyNew bool) (ImportResult, error) {
	var res ImportResult
	var changes []Change
	seen := map[string]bool{}
	now := k.opt.Now().UTC()
	for i := range articles {
		a := articles[i]
		if err := a.Validate(); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) && ve.File == "" {
				ve.Field = fmt.Sprintf("articles[%d].%s", i, ve.Field)
			}
			return ImportResult{}, err
		}
		if seen[a.ID] {
			return ImportResult{}, &ValidationError{Field: fmt.Sprintf("articles[%d].id", i), Msg: fmt.Sprintf("%q appears twice", a.ID)}
		}
		seen[a.ID] = true
		cur, err := k.Get(a.ID)
		action := "import.create"
		switch {
		case err != nil:
			a.Version, a.CreatedAt = k.version("article:"+a.ID)+1, now
			res.Created++
		case onlyNew || sameContent(&cur, &a):
			res.Unchanged++
			continue
		default:
			a.Version, a.CreatedAt, action = cur.Version+1, cur.CreatedAt, "import.update"
			res.Updated++
		}
		a.Author, a.UpdatedAt = actor, now
		changes = append(changes, Change{Article: &a, Audit: k.audit(actor, action, "article", a.ID, a.Version)})
	}
	if len(changes) == 0 {
		return res, nil
	}
	return res, k.commit(ctx, changes...)
}

func sameContent(a, b *Article) bool {
	x, y := *a, *b
	x.Version, x.Author, x.CreatedAt, x.UpdatedAt = 0, "", time.Time{}, time.Time{}
	y.Version, y.Author, y.CreatedAt, y.UpdatedAt = 0, "", time.Time{}, time.Time{}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// History returns every version of an article, oldest first.
func (k *KB) History(ctx context.Context, id string) ([]Article, error) {
	h, err := k.store.History(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("article %q: %w", id, ErrNotFound)
	}
	return h, err
}

// Audit returns the latest limit audit entries, newest first.
func (k *KB) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit < 1 || limit > 10000 {
		return nil, &ValidationError{Field: "limit", Msg: fmt.Sprintf("must be between 1 and 10000, got %d", limit)}
	}
	return k.store.Audit(ctx, limit)
}

// Search returns the k best published articles for text in lang ("" for any).
func (k *KB) Search(ctx context.Context, text, lang string, n int) ([]Hit, error) {
	// Searched under the read lock: a reload swaps the index under the write lock and
	// closes the old one after, so no search ever meets a closed index.
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.idx.Search(ctx, text, lang, n)
}

// Len is the number of searchable (published) articles.
func (k *KB) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.idx.Len()
}
