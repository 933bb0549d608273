package kb

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// Journal is the Store of a single node: every change is appended as one JSON line to
// DIR/kb.journal and fsynced before Commit returns; opening replays the file. A last line
// cut short by a crash was never acknowledged and is dropped (with the byte offset in the
// Recovered field); a bad line anywhere else is an error naming file and line. Experiment
// counters are kept in memory and written to DIR/kb.counts.json on Close. With dir "" the
// journal lives only in memory.
type Journal struct {
	dir string

	mu        sync.Mutex
	f         appendFile
	end       int64             // offset after the last committed line
	broken    error             // set when a failed write could not be cut off: no more commits
	current   map[string]Change // by Change.Key
	history   map[string][]Article
	audit     []AuditEntry
	counts    map[string]map[string]*Counts // experiment → variant
	shown     map[string]string             // exp|seen|conv → the variant the conversation was shown
	seen      map[string]bool               // exp|kind|conv: outcomes counted
	closed    bool
	Recovered int64 // bytes of a torn last line dropped at open; 0 if none
}

const journalFile, countsFile = "kb.journal", "kb.counts.json"

// OpenJournal opens (creating) the journal in dir, or an in-memory one when dir is "".
func OpenJournal(dir string) (*Journal, error) {
	j := &Journal{dir: dir, current: map[string]Change{}, history: map[string][]Article{},
		counts: map[string]map[string]*Counts{}, shown: map[string]string{}, seen: map[string]bool{}}
	if dir == "" {
		return j, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, journalFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	good, err := j.replay(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if end, _ := f.Seek(0, io.SeekEnd); end > good {
		j.Recovered = end - good
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, err
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	j.f, j.end = f, good
	if data, err := os.ReadFile(filepath.Join(dir, countsFile)); err == nil {
		var saved struct {
			Counts map[string]map[string]*Counts `json:"counts"`
			Shown  map[string]string             `json:"shown"`
			Seen   []string                      `json:"seen"`
		}
		if err := json.Unmarshal(data, &saved); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, countsFile), err)
		}
		if saved.Counts != nil {
			j.counts = saved.Counts
		}
		for _, s := range saved.Seen {
			j.seen[s] = true
		}
		for k, v := range saved.Shown {
			j.shown[k] = v
		}
	}
	return j, nil
}

// replay applies every complete line and returns the offset after the last good one.
func (j *Journal) replay(path string, f *os.File) (int64, error) {
	r := bufio.NewReader(f)
	var off int64
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if err == io.EOF {
			return off, nil // a torn last line (no newline) is not committed
		}
		if err != nil {
			return 0, err
		}
		var c Change
		if err := json.Unmarshal(bytes.TrimSpace(b), &c); err != nil || (c.Article == nil) == (c.Experiment == nil) {
			if _, err := r.Peek(1); err == io.EOF {
				return off, nil // a torn last line
			}
			return 0, fmt.Errorf("%s:%d: not a journal entry", path, line)
		}
		j.apply(c)
		off += int64(len(b))
	}
}

func (j *Journal) apply(c Change) {
	j.current[c.Key()] = c
	if c.Article != nil {
		j.history[c.Article.ID] = append(j.history[c.Article.ID], *c.Article)
	}
	j.audit = append(j.audit, c.Audit)
}

// Load implements Store.
func (j *Journal) Load(ctx context.Context) (*Snapshot, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, ErrClosed
	}
	s := &Snapshot{Cursor: fmt.Sprint(len(j.audit)), Versions: map[string]int64{}, Generation: "journal"}
	for key, c := range j.current {
		s.Versions[key] = c.Version()
		switch {
		case c.Article != nil && !c.Article.Deleted:
			s.Articles = append(s.Articles, *c.Article)
		case c.Experiment != nil:
			s.Experiments = append(s.Experiments, *c.Experiment)
		}
	}
	slices.SortFunc(s.Articles, func(a, b Article) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Experiments, func(a, b Experiment) int { return cmp.Compare(a.ID, b.ID) })
	return s, nil
}

// Commit implements Store.
func (j *Journal) Commit(ctx context.Context, changes []Change) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	var buf bytes.Buffer
	for _, c := range changes {
		var got int64
		if cur, ok := j.current[c.Key()]; ok {
			got = cur.Version()
		}
		if got != c.Version()-1 {
			return fmt.Errorf("%s is at version %d, not %d: %w", c.Key(), got, c.Version()-1, ErrConflict)
		}
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if j.broken != nil {
		return fmt.Errorf("kb journal: refusing edits after a write that could not be undone (%v); restart kefu", j.broken)
	}
	if j.f != nil {
		if _, err := j.f.Write(buf.Bytes()); err != nil {
			return j.rollback(err)
		}
		if err := j.f.Sync(); err != nil {
			return j.rollback(err)
		}
		j.end += int64(buf.Len())
	}
	for _, c := range changes {
		j.apply(c)
	}
	return nil
}

// rollback cuts a failed commit (a part of it may be in the file) back to the end of the
// last good line, so that the next commit does not glue onto a fragment. If even that
// fails, the journal takes no more edits: an acknowledged edit must never be lost at the
// next start.
func (j *Journal) rollback(cause error) error {
	if err := j.f.Truncate(j.end); err != nil {
		j.broken = err
	} else if _, err := j.f.Seek(j.end, io.SeekStart); err != nil {
		j.broken = err
	}
	return fmt.Errorf("kb journal: the edit was not saved: %w", cause)
}

// appendFile is what the journal needs of its file (an *os.File; tests inject failures).
type appendFile interface {
	io.Writer
	io.Seeker
	Truncate(size int64) error
	Sync() error
	Close() error
}

// History implements Store.
func (j *Journal) History(ctx context.Context, id string) ([]Article, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	h := j.history[id]
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	return slices.Clone(h), nil
}

// Audit implements Store.
func (j *Journal) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := min(limit, len(j.audit))
	out := make([]AuditEntry, 0, n)
	for i := len(j.audit) - 1; i >= len(j.audit)-n; i-- {
		out = append(out, j.audit[i])
	}
	return out, nil
}

// Watch implements Store: a journal has one node, so there is nothing to report.
func (j *Journal) Watch(ctx context.Context, cursor string, apply func(Change)) error {
	<-ctx.Done()
	return ctx.Err()
}

// Expose implements Counters.
func (j *Journal) Expose(ctx context.Context, exp, variant, conv string) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	key := exp + "|seen|" + conv
	if j.shown[key] != "" {
		return false, nil
	}
	j.shown[key] = variant
	j.count(exp, variant).Exposures++
	return true, nil
}

// Outcome implements Counters.
func (j *Journal) Outcome(ctx context.Context, exp, conv, kind string, fields map[string]int64) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	variant := j.shown[exp+"|seen|"+conv]
	key := exp + "|" + kind + "|" + conv
	if variant == "" || j.seen[key] {
		return false, nil
	}
	j.seen[key] = true
	c := j.count(exp, variant)
	for f, n := range fields {
		c.Add(f, n)
	}
	return true, nil
}

// Forget implements Counters.
func (j *Journal) Forget(ctx context.Context, exp, conv string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.shown, exp+"|seen|"+conv)
	for _, kind := range []string{OutcomeUnresolved, OutcomeCSAT, OutcomeThumb} {
		delete(j.seen, exp+"|"+kind+"|"+conv)
	}
	return nil
}

// Counts implements Counters.
func (j *Journal) Counts(ctx context.Context, exp string) (map[string]Counts, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := map[string]Counts{}
	for v, c := range j.counts[exp] {
		out[v] = *c
	}
	return out, nil
}

func (j *Journal) count(exp, variant string) *Counts {
	m := j.counts[exp]
	if m == nil {
		m = map[string]*Counts{}
		j.counts[exp] = m
	}
	c := m[variant]
	if c == nil {
		c = &Counts{}
		m[variant] = c
	}
	return c
}

// Close writes the counters and closes the file; safe to call twice.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	if j.f == nil {
		return nil
	}
	var errs []error
	saved := struct {
		Counts map[string]map[string]*Counts `json:"counts"`
		Shown  map[string]string             `json:"shown"`
		Seen   []string                      `json:"seen"`
	}{Counts: j.counts, Shown: j.shown}
	for k := range j.seen {
		saved.Seen = append(saved.Seen, k)
	}
	slices.Sort(saved.Seen)
	if data, err := json.Marshal(saved); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, writeFileAtomic(filepath.Join(j.dir, countsFile), data))
	}
	errs = append(errs, j.f.Close())
	return errors.Join(errs...)
}

// writeFileAtomic writes data to a temporary file beside path and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
