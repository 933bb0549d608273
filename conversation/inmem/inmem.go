// Package inmem keeps conversations and the results of their action calls in this process:
// the embedded default, for one node.
package inmem

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/kefu-ai/kefu/conversation"
)

// Store keeps conversations in memory. Conversations idle longer than its TTL are
// forgotten.
type Store struct {
	mu    sync.Mutex
	convs map[string]entry
	ttl   time.Duration
	now   func() time.Time
	swept time.Time // last sweep of expired conversations
}

type entry struct {
	conv    *conversation.Conversation // a private copy
	expires time.Time
}

var _ conversation.Store = (*Store)(nil)

// NewStore returns an empty store; ttl 0 means 24 hours.
func NewStore(ttl time.Duration) *Store {
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	return &Store{convs: map[string]entry{}, ttl: ttl, now: time.Now}
}

func (s *Store) get(id string) (entry, bool) {
	e, ok := s.convs[id]
	if ok && s.now().After(e.expires) {
		delete(s.convs, id)
		return entry{}, false
	}
	return e, ok
}

// Load returns the conversation, or conversation.ErrNotFound.
func (s *Store) Load(_ context.Context, id string) (*conversation.Conversation, error) {
	s.mu.Lock()
	e, ok := s.get(id)
	s.mu.Unlock()
	if !ok {
		return nil, conversation.ErrNotFound
	}
	c := e.conv.Clone()
	c.MarkStored()
	return c, nil
}

// Save writes c if the stored version is still c.Version (0: new), then bumps c.Version;
// conversation.ErrConflict otherwise.
func (s *Store) Save(_ context.Context, c *conversation.Conversation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur int64
	if e, ok := s.get(c.ID); ok {
		cur = e.conv.Version
	}
	if cur != c.Version {
		return conversation.ErrConflict
	}
	c.Version++
	c.MarkStored()
	now := s.now()
	s.convs[c.ID] = entry{conv: c.Clone(), expires: now.Add(s.ttl)}
	if now.Sub(s.swept) > time.Minute { // expired conversations go, not only when read again
		s.swept = now
		for id, e := range s.convs {
			if now.After(e.expires) {
				delete(s.convs, id)
			}
		}
	}
	return nil
}

// Len counts the conversations held (expired ones not yet swept included).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.convs)
}

// Delete erases c if it is stored at c.Version: conversation.ErrNotFound if there is none,
// conversation.ErrConflict if it changed.
func (s *Store) Delete(_ context.Context, c *conversation.Conversation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.get(c.ID)
	switch {
	case !ok:
		return conversation.ErrNotFound
	case e.conv.Version != c.Version:
		return conversation.ErrConflict
	}
	delete(s.convs, c.ID)
	return nil
}

// Ping always succeeds.
func (s *Store) Ping(context.Context) error { return nil }

// Calls keeps the results of action calls in memory (dialogs.Recorder): a call made once
// under a key is not made again while its result is kept (TTL).
type Calls struct {
	mu    sync.Mutex
	calls map[string]*call
	ttl   time.Duration
	now   func() time.Time
	swept time.Time // last sweep of expired results
}

type call struct {
	done    chan struct{} // closed when result is set
	result  []byte
	expires time.Time
}

// NewCalls returns an empty record; ttl 0 means 24 hours.
func NewCalls(ttl time.Duration) *Calls {
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	return &Calls{calls: map[string]*call{}, ttl: ttl, now: time.Now}
}

// Erase forgets the conversation's call results (dialogs.Recorder).
func (r *Calls) Erase(_ context.Context, conv string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, c := range r.calls {
		if strings.HasPrefix(k, conv+":") && c.result != nil {
			delete(r.calls, k)
		}
	}
	return nil
}

// Once returns the result kept under key, waiting for a call in flight; without one it
// makes the call and keeps its result. A call whose ctx ended is not kept. The lease is
// unused here (a call in this process cannot die without the process).
func (r *Calls) Once(ctx context.Context, key string, _ time.Duration, fn func(context.Context) []byte) ([]byte, error) {
	for {
		r.mu.Lock()
		now := r.now()
		if now.Sub(r.swept) > time.Minute {
			r.swept = now
			for k, c := range r.calls {
				if c.result != nil && now.After(c.expires) {
					delete(r.calls, k)
				}
			}
		}
		c, ok := r.calls[key]
		if ok && c.result != nil && now.After(c.expires) {
			ok = false
		}
		if !ok {
			c = &call{done: make(chan struct{})}
			r.calls[key] = c
			r.mu.Unlock()
			res := fn(ctx)
			r.mu.Lock()
			if ctx.Err() != nil {
				delete(r.calls, key) // not kept: the next caller calls again
				close(c.done)
				r.mu.Unlock()
				return nil, ctx.Err()
			}
			c.result, c.expires = res, r.now().Add(r.ttl)
			close(c.done)
			r.mu.Unlock()
			return res, nil
		}
		r.mu.Unlock()
		select {
		case <-c.done:
			r.mu.Lock()
			res := c.result
			r.mu.Unlock()
			if res != nil {
				return res, nil
			}
			// the call was abandoned: try again
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
