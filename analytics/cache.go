package analytics

import (
	"context"
	"sync"
	"time"
)

// Cached keeps the counters of buckets that can no longer change in memory, so that a
// summary of 90 days reads from the store only the buckets of the last hours. Every count
// is made at the time of its report (an idle conversation ends when a node notices), so a
// bucket is final once it ended and every node's buffer (a second) is written: Cached
// takes an hour's margin, for nodes whose clocks disagree.
func Cached(s Store, now func() time.Time) Store {
	if now == nil {
		now = time.Now
	}
	return &cached{Store: s, now: now, final: map[string]map[string]int64{}}
}

// finalAfter is how long after its end a bucket is taken as final.
const finalAfter = time.Hour

type cached struct {
	Store
	now   func() time.Time
	mu    sync.Mutex
	final map[string]map[string]int64
}

// Counters reads the buckets not yet cached (each on its own) and adds up each group.
func (c *cached) Counters(ctx context.Context, groups [][]string) ([]map[string]int64, error) {
	cutoff := c.now().Add(-finalAfter)
	c.mu.Lock()
	var missing [][]string
	seen := map[string]bool{}
	for _, g := range groups {
		for _, b := range g {
			if _, ok := c.final[b]; !ok && !seen[b] {
				seen[b] = true
				missing = append(missing, []string{b})
			}
		}
	}
	c.mu.Unlock()
	got, err := c.Store.Counters(ctx, missing)
	if err != nil {
		return nil, err
	}
	fresh := make(map[string]map[string]int64, len(missing))
	c.mu.Lock()
	for i, m := range missing {
		fresh[m[0]] = got[i]
		if end, ok := bucketEnd(m[0]); ok && end.Before(cutoff) {
			c.final[m[0]] = got[i]
		}
	}
	c.prune(cutoff)
	out := make([]map[string]int64, len(groups))
	for i, g := range groups {
		sum := map[string]int64{}
		for _, b := range g {
			m, ok := fresh[b]
			if !ok {
				m = c.final[b]
			}
			for f, n := range m {
				sum[f] += n
			}
		}
		out[i] = sum
	}
	c.mu.Unlock()
	return out, nil
}

// prune forgets hour buckets of more than two days ago (summaries read hours only at a
// period's edges) once the cache holds many.
func (c *cached) prune(cutoff time.Time) {
	if len(c.final) < 2000 {
		return
	}
	for b := range c.final {
		if t, ok := BucketTime(b); ok && b[0] == 'h' && t.Before(cutoff.Add(-48*time.Hour)) {
			delete(c.final, b)
		}
	}
}

// bucketEnd is when a bucket named by HourBucket or DayBucket ends.
func bucketEnd(name string) (time.Time, bool) {
	t, ok := BucketTime(name)
	if !ok {
		return t, false
	}
	if name[0] == 'h' {
		return t.Add(time.Hour), true
	}
	return t.Add(24 * time.Hour), true
}
