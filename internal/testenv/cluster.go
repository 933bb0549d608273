package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kefu-ai/kefu/internal/redisx"
)

// Cluster is a local Redis Cluster of three masters and three replicas, real redis-server
// processes on loopback ports, stopped when the test ends.
type Cluster struct {
	Addrs []string // every node, masters first as created
	mu    sync.Mutex
	procs map[string]*exec.Cmd
}

// StartCluster starts a cluster (redis-server --cluster-enabled yes ×6, redis-cli --cluster
// create) and waits until every slot is served. Without redis-server and redis-cli the test
// skips (fails under CI=true).
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	cli := need(tb, "redis-cli")
	dir := tb.TempDir()
	c := &Cluster{procs: map[string]*exec.Cmd{}}
	for i := range 6 {
		port := freeClusterPort(tb)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		nodeDir := filepath.Join(dir, strconv.Itoa(i))
		c.start(tb, addr, nodeDir, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
			"--cluster-node-timeout", "1000")
		c.Addrs = append(c.Addrs, addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(tb, 30*time.Second)
	// Every replica in sync with its master: a replica that never synced cannot take over.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		synced := 0
		for _, a := range c.Addrs {
			r := redis.NewClient(&redis.Options{Addr: a})
			info, _ := r.Info(context.Background(), "replication").Result()
			r.Close()
			if strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
				synced++
			}
		}
		if synced == 3 {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("only %d of 3 replicas in sync after 30 s", synced)
		}
	}
	return c
}

// start runs one redis-server on addr with its files in dir.
func (c *Cluster) start(tb testing.TB, addr, dir string, extra ...string) {
	tb.Helper()
	server := need(tb, "redis-server")
	host, port, _ := net.SplitHostPort(addr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	c.run(tb, addr, server, append([]string{"--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log")}, extra...)...)
}

// run starts a redis-server process answering at addr.
func (c *Cluster) run(tb testing.TB, addr, server string, args ...string) {
	tb.Helper()
	cmd := exec.Command(server, args...)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c.mu.Lock()
	c.procs[addr] = cmd
	c.mu.Unlock()
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPing(tb, addr)
}

// Kill stops the node at addr at once (SIGKILL).
func (c *Cluster) Kill(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[addr]; p != nil {
		p.Process.Kill()
		p.Wait()
		delete(c.procs, addr)
	}
}

// Client returns a cluster client with kefu's timeouts, closed when the test ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, DialTimeout: time.Second,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: 1})
	redisx.FollowFailover(rdb) // as kefu serve's client does
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// Masters lists the addresses of the nodes that are masters now.
func (c *Cluster) Masters(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, a := range c.live() {
		r := redis.NewClient(&redis.Options{Addr: a})
		info, err := r.Info(context.Background(), "replication").Result()
		r.Close()
		if err == nil && strings.Contains(info, "role:master") {
			out = append(out, a)
		}
	}
	return out
}

func (c *Cluster) live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range c.Addrs {
		if c.procs[a] != nil {
			out = append(out, a)
		}
	}
	return out
}

// WaitHealthy waits until every live node says cluster_state:ok.
func (c *Cluster) WaitHealthy(tb testing.TB, limit time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	for {
		ok := true
		for _, a := range c.live() {
			r := redis.NewClient(&redis.Options{Addr: a})
			info, err := r.ClusterInfo(context.Background()).Result()
			r.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
				break
			}
		}
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			tb.Fatalf("the Redis cluster is not healthy after %v", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Sentinel is one Redis master, one replica and three Sentinels watching them (master name
// "kefu"), real processes on loopback ports, stopped when the test ends.
type Sentinel struct {
	Cluster
	Master, Replica string
	Sentinels       []string
}

// StartSentinel starts the master, its replica and the Sentinels (down after 1 s, failover
// within a few).
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	dir := tb.TempDir()
	s := &Sentinel{Cluster: Cluster{procs: map[string]*exec.Cmd{}}}
	s.Master, s.Replica = "127.0.0.1:"+strconv.Itoa(freeClusterPort(tb)), "127.0.0.1:"+strconv.Itoa(freeClusterPort(tb))
	s.start(tb, s.Master, filepath.Join(dir, "master"))
	_, mport, _ := net.SplitHostPort(s.Master)
	s.start(tb, s.Replica, filepath.Join(dir, "replica"), "--replicaof", "127.0.0.1", mport)
	for i := range 3 {
		addr := "127.0.0.1:" + strconv.Itoa(freeClusterPort(tb))
		conf := filepath.Join(dir, fmt.Sprintf("sentinel%d.conf", i))
		text := fmt.Sprintf("port %s\nbind 127.0.0.1\nsentinel monitor kefu 127.0.0.1 %s 2\nsentinel down-after-milliseconds kefu 1000\n"+
			"sentinel failover-timeout kefu 5000\nsentinel parallel-syncs kefu 1\n", strings.Split(addr, ":")[1], mport)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
		s.run(tb, addr, need(tb, "redis-server"), conf, "--sentinel") // the file first: Sentinel rewrites it
		s.Sentinels = append(s.Sentinels, addr)
	}
	// The replica is in sync before the test starts.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := redis.NewClient(&redis.Options{Addr: s.Replica})
		info, _ := r.Info(context.Background(), "replication").Result()
		r.Close()
		if strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("the replica did not sync")
		}
	}
	return s
}

// Client returns a Sentinel-aware client of master "kefu" with kefu's timeouts.
func (s *Sentinel) Client(tb testing.TB) *redis.Client {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "kefu", SentinelAddrs: s.Sentinels, DialTimeout: time.Second,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: 1})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

func need(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(tb, name+" (Debian's redis-server package)", err)
	}
	return p
}

// freeClusterPort returns a loopback port that is free, as is the port 10000 above it (a
// cluster node's bus).
func freeClusterPort(tb testing.TB) int {
	tb.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port+10000 > 65535 {
			continue
		}
		if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			bus.Close()
			return port
		}
	}
	tb.Fatal("no free port pair for a cluster node")
	return 0
}

func waitPing(tb testing.TB, addr string) {
	tb.Helper()
	r := redis.NewClient(&redis.Options{Addr: addr})
	defer r.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r.Ping(context.Background()).Err() == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server at %s did not start", addr)
		}
	}
}
