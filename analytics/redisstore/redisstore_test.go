package redisstore_test

import (
	"testing"

	"github.com/kefu-ai/kefu/analytics/redisstore"
	"github.com/kefu-ai/kefu/analytics/storetest"
	"github.com/kefu-ai/kefu/internal/testenv"
)

func TestStore(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	s := redisstore.New(rdb, prefix, 0)
	if err := s.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, s)
}

// BenchmarkSummary90Days: a summary over 90 days of 100,000 conversations a day (the
// issue's bound: 100 ms).
func BenchmarkSummary90Days(b *testing.B) {
	rdb, prefix := testenv.Redis(b)
	s := redisstore.New(rdb, prefix, 0)
	storetest.BenchSummary(b, s, storetest.Fill(b, s, 90))
}

// TestStoreOnCluster: the same checks on a local Redis Cluster of three masters and three
// replicas: every script touches one slot ({analytics}).
func TestStoreOnCluster(t *testing.T) {
	testenv.UseRedis(t, testenv.StartCluster(t).Client(t))
	t.Run("store", TestStore)
}
