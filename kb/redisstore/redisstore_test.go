package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/kb"
	"github.com/kefu-ai/kefu/kb/redisstore"
)

// twoNodes opens two knowledge bases on one Redis, as two kefu processes would.
func twoNodes(t *testing.T) (*kb.KB, *kb.KB) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	var nodes [2]*kb.KB
	for i := range nodes {
		k, err := kb.Open(context.Background(), redisstore.New(rdb, redisstore.Options{Prefix: strings.TrimSuffix(prefix, ":"), Block: 100 * time.Millisecond}), kb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		nodes[i] = k
	}
	return nodes[0], nodes[1]
}

func faq(id, question, answer string) kb.Article {
	return kb.Article{ID: id, Status: kb.Published, Questions: []string{question},
		Answers: []kb.Answer{{ID: "v1", Text: map[string]string{"en": answer}}, {ID: "v2", Text: map[string]string{"en": answer + "!"}}}}
}

// waitFor polls until found returns true, for at most limit; it returns how long it took.
func waitFor(t *testing.T, limit time.Duration, found func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !found() {
		if time.Since(start) > limit {
			t.Fatalf("not seen within %v", limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestTwoNodesStayInStep(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	searchB := func(q, want string) func() bool {
		return func() bool {
			h, err := b.Search(ctx, q, "", 1)
			return err == nil && len(h) == 1 && h[0].ID == want
		}
	}
	if _, err := a.Create(ctx, faq("hours", "what are your opening hours", "9 to 5"), "ann"); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, time.Second, searchB("opening hours", "hours"))
	t.Logf("created on node A, searchable on node B after %v", took)

	cur, _ := a.Get("hours")
	cur.Questions = []string{"when does the shop close"}
	if _, err := a.Update(ctx, cur, "ann", cur.Version); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, searchB("shop close", "hours"))
	if h, _ := b.Search(ctx, "opening hours", "", 1); len(h) != 0 {
		t.Errorf("node B still finds the old question: %v", h)
	}
	// B writes too, and A follows.
	if err := b.Delete(ctx, "hours", "bob", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, func() bool { _, err := a.Get("hours"); return errors.Is(err, kb.ErrNotFound) })

	hist, err := a.History(ctx, "hours")
	if err != nil || len(hist) != 3 || !hist[2].Deleted {
		t.Fatalf("history in Redis: %+v %v", hist, err)
	}
	audit, err := b.Audit(ctx, 10)
	if err != nil || len(audit) != 3 || audit[0].Actor != "bob" || audit[2].Action != "create" {
		t.Fatalf("audit in Redis: %+v %v", audit, err)
	}

	// A third node started later loads everything, including versions of deleted ids.
	rdbNode, err := a.Create(ctx, faq("hours", "opening times", "8 to 6"), "ann")
	if err != nil || rdbNode.Version != 4 {
		t.Fatalf("re-created article: %+v %v", rdbNode, err)
	}
}

func TestConcurrentEditsConflict(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	if _, err := a.Create(ctx, faq("x", "question", "answer"), "ann"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, func() bool { _, err := b.Get("x"); return err == nil })
	// Both nodes edit version 1 at once: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := []*kb.KB{a, b}[i%2]
			art := faq("x", fmt.Sprintf("question %d", i), "answer")
			_, errs[i] = node.Update(ctx, art, "ed", 1)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, kb.ErrConflict):
			t.Fatal(err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d edits of version 1 succeeded, want exactly 1", wins)
	}
	hist, _ := a.History(ctx, "x")
	if len(hist) != 2 {
		t.Fatalf("history has %d versions, want 2", len(hist))
	}
}

func TestCountersAggregateAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	ctx := context.Background()
	if _, err := a.Create(ctx, faq("refund", "how long does a refund take", "three days"), "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateExperiment(ctx, kb.Experiment{ID: "w", Article: "refund", Variants: []kb.Arm{{Answer: "v1", Weight: 1}, {Answer: "v2", Weight: 1}}}, "ann"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, func() bool { _, err := b.Experiment("w"); return err == nil })
	// The same customer gets the same variant on both nodes; each conversation counts once.
	for i := range 50 {
		conv := fmt.Sprintf("conv-%d", i)
		q := kb.Question{Text: "refund how long", Lang: "en", Customer: fmt.Sprintf("cust-%d", i), Conversation: conv}
		ra, err := a.Answer(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		q.Conversation = conv + "-again"
		rb, err := b.Answer(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if ra.Variant != rb.Variant {
			t.Fatalf("customer %d got %s on node A and %s on node B", i, ra.Variant, rb.Variant)
		}
		if i%5 == 0 {
			if err := b.Feedback(ctx, kb.Feedback{Article: "refund", Customer: q.Customer, Conversation: conv, CSAT: 4, Thumb: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep, err := b.Report(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	var exposures, csat, up int64
	for _, v := range rep.Variants {
		exposures += v.Counts.Exposures
		csat += v.Counts.CSATN
		up += v.Counts.ThumbsUp
	}
	if exposures != 100 || csat != 10 || up != 10 {
		t.Fatalf("counts over two nodes: exposures %d csat %d thumbs up %d, want 100, 10, 10", exposures, csat, up)
	}
}

// TestOnCluster: the KB store's checks again on a local Redis Cluster (three masters,
// three replicas): every key shares the hash tag {kb}.
func TestOnCluster(t *testing.T) {
	testenv.UseRedis(t, testenv.StartCluster(t).Client(t))
	t.Run("two nodes", TestTwoNodesStayInStep)
	t.Run("conflicts", TestConcurrentEditsConflict)
	t.Run("counters", TestCountersAggregateAcrossNodes)
}
