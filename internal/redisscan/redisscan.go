// Package redisscan finds keys by pattern on one Redis or on every master of a Redis
// Cluster (where SCAN sees only the node it is sent to).
package redisscan

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Keys calls fn with each key matching pattern (a key may come twice, as SCAN allows).
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string, fn func(key string) error) error {
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			if err := fn(iter.Val()); err != nil {
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
