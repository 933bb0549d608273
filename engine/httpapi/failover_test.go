package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/conversation/redisstore"
	"github.com/kefu-ai/kefu/internal/testenv"
)

// TestOnCluster: two kefu nodes on a local Redis Cluster (three masters, three replicas)
// pass the checks they pass on one Redis: 64 concurrent messages to one conversation, a
// refund confirmed on both nodes at once, a handoff to a flaky desk, the figures, erasure.
func TestOnCluster(t *testing.T) {
	testenv.UseRedis(t, testenv.StartCluster(t).Client(t))
	t.Run("64 concurrent messages", TestTwoNodesSixtyFourConcurrentMessagesToOneConversation)
	t.Run("refund confirmed twice at once", TestTwoNodesConfirmARefundAtOnce)
	t.Run("handoff to a flaky desk", TestHandoffReachesAFlakyAgentDeskWithFullContext)
	t.Run("figures", TestAnalyticsAcrossTwoNodes)
	t.Run("erasure", TestDeleteErasesEveryCopy)
}

// load sends messages from workers conversations, each message with its id and retried
// after a 503 (as a frontend does) until it is answered, until stop; it counts what it saw.
type load struct {
	w       *world
	workers int
	stop    atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	ok      map[string]int // conversation → messages answered 200
	status  map[int]int
	lastErr time.Time // the last refused answer
	firstEr time.Time
}

func (l *load) run(t *testing.T, name string) {
	l.ok, l.status = map[string]int{}, map[int]int{}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range l.workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			conv := fmt.Sprintf("%s-%d", name, i)
			for m := 0; !l.stop.Load(); m++ {
				body := fmt.Sprintf(`{"text": "where is my order, message %d", "message_id": "m-%d", "customer": {"id": "%s"}}`, m, m, conv)
				for !l.stop.Load() { // the same message until it is answered
					resp, err := client.Post(l.w.nodes[(i+m)%len(l.w.nodes)].URL+"/v1/conversations/"+conv+"/messages", "application/json", strings.NewReader(body))
					code := 0
					if err == nil {
						code = resp.StatusCode
						resp.Body.Close()
					}
					l.mu.Lock()
					l.status[code]++
					if code == 200 {
						l.ok[conv]++
					} else {
						if l.firstEr.IsZero() {
							l.firstEr = time.Now()
						}
						l.lastErr = time.Now()
					}
					l.mu.Unlock()
					if code == 200 {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
}

// check stops the load and says whether every conversation recorded each answered message
// exactly once, in order; it returns how many answered messages a conversation lacks
// (writes a failed master had acknowledged but not yet passed to its replica).
func (l *load) check(t *testing.T, rdb redis.UniversalClient, name string) (lost int) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	store := redisstore.New(rdb, redisstore.Options{Prefix: strings.TrimSuffix(l.w.prefix, ":")})
	for i := range l.workers {
		conv := fmt.Sprintf("%s-%d", name, i)
		c, err := store.Load(context.Background(), conv)
		if err != nil {
			t.Fatalf("%s: %v", conv, err)
		}
		seen := map[string]bool{}
		for j, tr := range c.Turns {
			if seen[tr.Text] {
				t.Errorf("%s: %q recorded twice", conv, tr.Text)
			}
			seen[tr.Text] = true
			if j > 0 && tr.Seq != c.Turns[j-1].Seq+1 {
				t.Errorf("%s: turn %d follows turn %d: a turn half-saved", conv, tr.Seq, c.Turns[j-1].Seq)
			}
		}
		if c.TurnCount > l.ok[conv] {
			t.Errorf("%s: %d turns recorded, %d messages answered", conv, c.TurnCount, l.ok[conv])
		}
		lost += l.ok[conv] - c.TurnCount
	}
	for code, n := range l.status {
		if code != 200 && code != 503 {
			t.Errorf("%d answers with status %d (only 200 and 503 are expected during a failover)", n, code)
		}
	}
	return lost
}

// TestClusterMasterKilledUnderLoad: a master of the cluster is killed under load; its
// replica takes over by itself. Meanwhile turns answer 503 (or succeed on the other
// masters), none is half-saved or recorded twice, and the load recovers without a
// restart. The time to recover is logged.
func TestClusterMasterKilledUnderLoad(t *testing.T) {
	cluster := testenv.StartCluster(t)
	rdb := cluster.Client(t)
	killMasterUnderLoad(t, rdb, "fo", 12, func() string { v := cluster.Masters(t)[0]; cluster.Kill(v); return v })
	if len(cluster.Masters(t)) != 3 {
		t.Errorf("masters after the failover: %v; want 3 (the replica promoted)", cluster.Masters(t))
	}
}

// killMasterUnderLoad runs two nodes on rdb under load from workers conversations, kills
// a master (kill says which), waits for the load to recover and checks every conversation.
func killMasterUnderLoad(t *testing.T, rdb redis.UniversalClient, name string, workers int, kill func() string) {
	t.Helper()
	testenv.UseRedis(t, rdb)
	_, prefix := testenv.Redis(t)
	l := &load{w: newWorld(t, 2, rdb, prefix), workers: workers}
	l.run(t, name)
	time.Sleep(time.Second)
	killed := time.Now()
	victim := kill()
	recovered := l.recovery(killed)
	l.mu.Lock()
	answered, refused := l.status[200], l.status[503]
	l.mu.Unlock()
	lost := l.check(t, rdb, name)
	t.Logf("killed master %s: last refused answer %v after the kill; %d answered, %d refused (503), %d acknowledged turns lost with the master",
		victim, recovered.Round(10*time.Millisecond), answered, refused, lost)
	if recovered < 0 {
		t.Fatalf("turns did not recover within 30 s of the master's death (%d refused)", refused)
	}
}

// recovery waits (at most 30 s) until 2 s pass without a refused answer and returns the
// time from killed to the last refused answer (0: none refused; -1: not recovered).
func (l *load) recovery(killed time.Time) time.Duration {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		l.mu.Lock()
		last := l.lastErr
		l.mu.Unlock()
		since := killed
		if last.After(killed) {
			since = last
		}
		if time.Since(since) > 2*time.Second {
			if last.Before(killed) {
				return 0
			}
			return last.Sub(killed)
		}
	}
	return -1
}

// TestSentinelFailoverUnderLoad: the same with Sentinel: the master is killed, Sentinel
// promotes the replica, the failover client follows it.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	s := testenv.StartSentinel(t)
	rdb := s.Client(t)
	killMasterUnderLoad(t, rdb, "sf", 8, func() string { s.Kill(s.Master); return s.Master })
	info, err := rdb.Info(context.Background(), "replication").Result()
	if err != nil || !strings.Contains(info, "role:master") {
		t.Errorf("the client does not reach a master after the failover: %v", err)
	}
}
