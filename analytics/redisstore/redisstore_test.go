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
