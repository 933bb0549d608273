// Package redisx holds what kefu's Redis stores need beyond go-redis: finding keys on
// every master of a cluster, and following a cluster's failover at once.
package redisx

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys calls fn with each key matching pattern (a key may come twice, as SCAN allows),
// one call at a time (a cluster's masters are scanned at once).
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string, fn func(key string) error) error {
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			err := fn(iter.Val())
			mu.Unlock()
			if err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, rdb)
}

// FollowFailover makes cc reload the cluster's slot map as soon as a command fails on the
// network (a master died: its replica takes its slots), at most every 200 ms, instead of at
// go-redis's next periodic reload (a minute by default) or its next redirect.
func FollowFailover(cc *redis.ClusterClient) {
	var last atomic.Int64
	cc.AddHook(follow{cc: cc, last: &last})
}

type follow struct {
	cc   *redis.ClusterClient
	last *atomic.Int64
}

func (f follow) reload(err error) {
	var ne net.Error
	var oe *net.OpError
	if err == nil || !(errors.As(err, &ne) || errors.As(err, &oe)) {
		return
	}
	now := time.Now().UnixMilli()
	if prev := f.last.Load(); now-prev > 200 && f.last.CompareAndSwap(prev, now) {
		f.cc.ReloadState(context.Background())
	}
}

func (f follow) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		f.reload(err)
		return c, err
	}
}

func (f follow) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		f.reload(err)
		return err
	}
}

func (f follow) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		f.reload(err)
		return err
	}
}
