package httpapi

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Limiter decides whether a key may send one more request: its rate in requests per
// second on average, burst at once. It answers how long to wait when not.
type Limiter interface {
	Allow(ctx context.Context, key string, perSecond float64, burst int) (ok bool, retryAfter time.Duration)
}

// LocalLimiter keeps each key's token bucket in this process (golang.org/x/time/rate):
// with N nodes a key gets N times its rate. Config.Limiter defaults to one.
type LocalLimiter struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// NewLocalLimiter returns an empty LocalLimiter.
func NewLocalLimiter() *LocalLimiter { return &LocalLimiter{m: map[string]*rate.Limiter{}} }

// Allow takes a token from key's bucket.
func (l *LocalLimiter) Allow(_ context.Context, key string, perSecond float64, burst int) (bool, time.Duration) {
	l.mu.Lock()
	lim := l.m[key]
	if lim == nil || lim.Limit() != rate.Limit(perSecond) || lim.Burst() != burst {
		lim = rate.NewLimiter(rate.Limit(perSecond), burst)
		l.m[key] = lim
	}
	l.mu.Unlock()
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel() // refused requests take nothing
		return false, d
	}
	return true, 0
}

// RedisLimiter shares each key's limit between every node using one Redis: the generic
// cell rate algorithm of go-redis/redis_rate, one atomic script per request. When Redis
// cannot be reached it falls back to a LocalLimiter, so an outage limits per node instead
// of refusing everything or nothing.
type RedisLimiter struct {
	lim      *redis_rate.Limiter
	prefix   string
	fallback *LocalLimiter
	log      *slog.Logger
}

// NewRedisLimiter limits under prefix in rdb.
func NewRedisLimiter(rdb redis.UniversalClient, prefix string, log *slog.Logger) *RedisLimiter {
	return &RedisLimiter{lim: redis_rate.NewLimiter(rdb), prefix: prefix, fallback: NewLocalLimiter(), log: log}
}

// Allow counts one request of key in Redis.
func (l *RedisLimiter) Allow(ctx context.Context, key string, perSecond float64, burst int) (bool, time.Duration) {
	// One request per emission interval: redis_rate's Rate is whole requests per Period.
	period := time.Duration(math.Round(float64(time.Second) / perSecond))
	res, err := l.lim.Allow(ctx, l.prefix+":key:"+key, redis_rate.Limit{Rate: 1, Period: period, Burst: burst})
	if err != nil {
		l.log.Warn("rate limit: Redis unreachable, limiting on this node only", "err", err)
		return l.fallback.Allow(ctx, key, perSecond, burst)
	}
	if res.Allowed > 0 {
		return true, 0
	}
	return false, res.RetryAfter
}
