package kb

import (
	"context"
	"time"
)

// Store keeps the articles and experiments, every version of each, and the audit log. It is
// the source of truth; each node's index follows it. Implementations: the on-disk Journal
// here (one node) and kb/redisstore (many nodes on one Redis).
type Store interface {
	// Load returns every current article and experiment (deleted ones left out) and a cursor
	// from which Watch reports later changes.
	Load(ctx context.Context) (*Snapshot, error)
	// Commit writes changes atomically: all or none. Each change's Version must be one more
	// than the stored version of its record (0 for a record never written); otherwise
	// nothing is written and the error wraps ErrConflict.
	Commit(ctx context.Context, changes []Change) error
	// History returns every version of an article, oldest first; ErrNotFound if none.
	History(ctx context.Context, id string) ([]Article, error)
	// Audit returns the latest limit audit entries, newest first.
	Audit(ctx context.Context, limit int) ([]AuditEntry, error)
	// Watch calls apply, in commit order, for changes committed after cursor by any node,
	// until ctx ends or the store fails. A store with one node may block without calling.
	Watch(ctx context.Context, cursor string, apply func(Change)) error
	// Counters are the experiments' outcome counts.
	Counters
	Close() error
}

// Snapshot is a store's content at one moment.
type Snapshot struct {
	Articles    []Article
	Experiments []Experiment
	// Versions holds the latest version of every record ever written, by Change.Key,
	// deleted articles included (a re-created id continues its versions).
	Versions map[string]int64
	Cursor   string
	// Generation names the store's content: it is set with the first write and only a store
	// that lost its data (a Redis restarted without persistence) comes back without it.
	Generation string
}

// Change is one new version of an article or an experiment, with its audit entry.
type Change struct {
	Article    *Article    `json:"article,omitempty"`
	Experiment *Experiment `json:"experiment,omitempty"`
	Audit      AuditEntry  `json:"audit"`
}

// Version is the version the change writes.
func (c *Change) Version() int64 {
	if c.Article != nil {
		return c.Article.Version
	}
	return c.Experiment.Version
}

// Key names the changed record: "article:ID" or "experiment:ID".
func (c *Change) Key() string {
	if c.Article != nil {
		return "article:" + c.Article.ID
	}
	return "experiment:" + c.Experiment.ID
}

// AuditEntry records who changed what, when.
type AuditEntry struct {
	Time    time.Time `json:"time" required:"true"`
	Actor   string    `json:"actor" required:"true"`
	Action  string    `json:"action" required:"true"` // create, update, delete, publish, import, experiment.create, …
	Kind    string    `json:"kind" required:"true"`   // article or experiment
	ID      string    `json:"id" required:"true"`
	Version int64     `json:"version" required:"true"`
}

// Counters count experiment exposures and outcomes. Counts of distinct conversations are
// kept with "first time" markers so that many nodes count each conversation once.
type Counters interface {
	// Expose counts conversation conv's first exposure to the experiment (later calls for
	// the same conversation return first=false and count nothing).
	Expose(ctx context.Context, exp, variant, conv string) (first bool, err error)
	// Outcome counts one outcome of conversation conv, for the variant it was shown: only
	// when it was exposed, and each kind (OutcomeUnresolved, OutcomeCSAT, OutcomeThumb)
	// once per conversation. It says whether it counted. fields are RateFields' or
	// {"unresolved": 1}.
	Outcome(ctx context.Context, exp, conv, kind string, fields map[string]int64) (bool, error)
	// Counts returns each variant's counts.
	Counts(ctx context.Context, exp string) (map[string]Counts, error)
	// Forget drops conversation conv's markers in experiment exp (the counts stay: they
	// name no one).
	Forget(ctx context.Context, exp, conv string) error
}

// Counts are one variant's outcome counts.
type Counts struct {
	Exposures  int64 `json:"exposures" required:"true"`
	Unresolved int64 `json:"unresolved" required:"true"`
	CSATN      int64 `json:"csat_n" required:"true"`
	CSATSum    int64 `json:"csat_sum" required:"true"`
	CSATSumSq  int64 `json:"csat_sum_sq" required:"true"`
	ThumbsUp   int64 `json:"thumbs_up" required:"true"`
	ThumbsDown int64 `json:"thumbs_down" required:"true"`
}

// Add adds the counts named by field (the Redis hash field names) by n.
func (c *Counts) Add(field string, n int64) {
	switch field {
	case "exposures":
		c.Exposures += n
	case "unresolved":
		c.Unresolved += n
	case "csat_n":
		c.CSATN += n
	case "csat_sum":
		c.CSATSum += n
	case "csat_sum_sq":
		c.CSATSumSq += n
	case "thumbs_up":
		c.ThumbsUp += n
	case "thumbs_down":
		c.ThumbsDown += n
	}
}

// RateFields lists the counter fields and increments one rating adds.
// Kinds of outcome, each counted once per exposed conversation.
const (
	OutcomeUnresolved = "unresolved"
	OutcomeCSAT       = "csat"
	OutcomeThumb      = "thumb"
)

func RateFields(csat, thumb int) map[string]int64 {
	f := map[string]int64{}
	if csat > 0 {
		f["csat_n"], f["csat_sum"], f["csat_sum_sq"] = 1, int64(csat), int64(csat*csat)
	}
	switch {
	case thumb > 0:
		f["thumbs_up"] = 1
	case thumb < 0:
		f["thumbs_down"] = 1
	}
	return f
}
