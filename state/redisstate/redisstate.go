// Package redisstate keeps the per-key state that guards money and the
// upstream APIs on Redis (7 or later, or Valkey), so that every replica of
// the server shares it: the request rate of each key, the slots of the
// calls waiting for runs, and the budgets. Every operation that guards
// money is one Lua script, atomic in Redis, and reads Redis's clock rather
// than each replica's. Keys carry the key's identity (a hash, such as
// bpapi.Client.KeyID), never an API key.
package redisstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/state"
)

// Ping checks that Redis answers, for a readiness probe.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Store is the state on one Redis deployment.
type Store struct {
	c      redis.UniversalClient
	prefix string
	begun  begunBodies // records this process began and has not finished
}

// New returns a Store on c; every key it writes starts with prefix
// (default "bpmcp:v1:").
func New(c redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = "bpmcp:v1:"
	}
	return &Store{c: c, prefix: prefix, begun: begunBodies{byHandle: map[string]string{}}}
}

func (s *Store) key(kind, id string) string { return s.prefix + kind + ":{" + id + "}" }

// ErrUnavailable wraps every failure to reach Redis: a guard that cannot be
// checked refuses (callers word it "nothing was spent"). It is
// state.ErrUnavailable.
var ErrUnavailable = state.ErrUnavailable

func unavailable(op string, err error) error {
	return fmt.Errorf("%w (%s): %v", ErrUnavailable, op, err)
}

// ---- request rate: GCRA ----------------------------------------------------

// gcra reserves the next request slot of a key: the theoretical arrival
// time (TAT) moves one interval on, and the caller waits until its slot.
// A wait longer than max_wait reserves nothing and returns its length,
// negated.
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local maxwait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - (burst - 1) * interval
if wait < 0 then wait = 0 end
if wait > maxwait then return -wait end
local newtat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', math.ceil((newtat - now) / 1000) + 1000)
return wait
`)

// RateLimiter holds every replica's requests with one key to rate per
// second, with a burst of burst. It implements bpapi.Limiter. When Redis
// cannot be reached it holds this replica's requests with its fallback, so
// that reads keep working (the guards of spending fail closed on their
// own).
type RateLimiter struct {
	s        *Store
	interval time.Duration
	burst    int
	fallback interface {
		Wait(ctx context.Context, keyID string) error
	}
}

// WithFallback sets the limiter used while Redis cannot be reached.
func (l *RateLimiter) WithFallback(f interface {
	Wait(ctx context.Context, keyID string) error
}) *RateLimiter {
	l.fallback = f
	return l
}

// RateLimiter returns the shared limiter of rate requests per second.
// A rate of 0 or less (or not a number) limits nothing.
func (s *Store) RateLimiter(rate float64, burst int) *RateLimiter {
	if burst < 1 {
		burst = 1
	}
	if !(rate > 0) || math.IsInf(rate, 1) {
		return &RateLimiter{s: s}
	}
	return &RateLimiter{s: s, interval: time.Duration(float64(time.Second) / rate), burst: burst}
}

// Wait blocks until the key may send one more request. A wait that would
// outlast ctx's deadline reserves nothing and fails at once.
func (l *RateLimiter) Wait(ctx context.Context, keyID string) error {
	if l.interval <= 0 {
		return nil // no limit
	}
	maxWait := int64(1 << 50)
	if dl, ok := ctx.Deadline(); ok {
		maxWait = max(time.Until(dl).Microseconds(), 0)
	}
	wait, err := gcra.Run(ctx, l.s.c, []string{l.s.key("rate", keyID)},
		l.interval.Microseconds(), l.burst, maxWait).Int64()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if l.fallback != nil {
			return l.fallback.Wait(ctx, keyID)
		}
		return unavailable("rate limit", err)
	}
	if wait < 0 {
		return fmt.Errorf("the rate limit's wait of %v would outlast the call: %w", time.Duration(-wait)*time.Microsecond, context.DeadlineExceeded)
	}
	if wait == 0 {
		return nil
	}
	timer := time.NewTimer(time.Duration(wait) * time.Microsecond)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ---- wait slots: leases in a sorted set -------------------------------------

var acquireSlot = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl + 1000 then redis.call('PEXPIRE', KEYS[1], ttl + 1000) end
return 1
`)

var heldSlots = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
`)

// Slots counts, per key, the holders of the calls waiting for runs, as
// leases that expire. It implements betterprompt.WaitSlots.
type Slots struct{ s *Store }

// Slots returns the shared wait slots.
func (s *Store) Slots() *Slots { return &Slots{s: s} }

// Acquire takes one of key's limit slots for at most ttl.
func (sl *Slots) Acquire(ctx context.Context, key string, limit int, ttl time.Duration) (func(), bool, error) {
	id := newID()
	k := sl.s.key("slots", key)
	ok, err := acquireSlot.Run(ctx, sl.s.c, []string{k}, limit, max(ttl.Milliseconds(), 1), id).Int()
	if err != nil {
		return nil, false, unavailable("wait slots", err)
	}
	if ok == 0 {
		return nil, false, nil
	}
	// Once: a caller may release early and again when it returns.
	release := sync.OnceFunc(func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sl.s.c.ZRem(rctx, k, id).Err() // a lost release ends with its lease
	})
	return release, true, nil
}

// Held returns how many of key's slots are held.
func (sl *Slots) Held(ctx context.Context, key string) (int, error) {
	n, err := heldSlots.Run(ctx, sl.s.c, []string{sl.s.key("slots", key)}).Int()
	if err != nil {
		return 0, unavailable("wait slots", err)
	}
	return n, nil
}

// ---- budgets: charges in a window ---------------------------------------------

// The charges of a key: KEYS[1] a sorted set of charge ids by the time they
// were reserved (ms), KEYS[2] a hash of charge id → "amount,settled",
// KEYS[3] the running totals {spent, reserved}, so that no script reads
// every charge. Every script first drops the charges that left the window,
// and takes them out of the totals.
//
// budgetTotals builds the totals from the charges when there are none
// (charges recorded before the totals existed, or totals lost): once
// built, every change of a charge keeps them.
const budgetTotals = `
if redis.call('EXISTS', KEYS[3]) == 0 then
  local s, r = 0, 0
  local all = redis.call('HGETALL', KEYS[2])
  for i = 2, #all, 2 do
    local amount, settled = string.match(all[i], '^(%d+),(%d)$')
    if settled == '1' then s = s + tonumber(amount) else r = r + tonumber(amount) end
  end
  if #all > 0 then
    redis.call('HSET', KEYS[3], 'spent', string.format('%d', s), 'reserved', string.format('%d', r))
    local ttl = redis.call('PTTL', KEYS[2])
    if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
  end
end
`

const budgetPrelude = budgetTotals + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
for _, id in ipairs(old) do
  local v = redis.call('HGET', KEYS[2], id)
  if v then
    local amount, settled = string.match(v, '^(%d+),(%d)$')
    if settled == '1' then redis.call('HINCRBY', KEYS[3], 'spent', -tonumber(amount))
    else redis.call('HINCRBY', KEYS[3], 'reserved', -tonumber(amount)) end
    redis.call('HDEL', KEYS[2], id)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local totals = redis.call('HMGET', KEYS[3], 'spent', 'reserved')
local spent, reserved = tonumber(totals[1]) or 0, tonumber(totals[2]) or 0
`

var reserveScript = redis.NewScript(budgetPrelude + `
local limit, id, amount = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
if limit - spent - reserved <= 0 or spent + reserved + amount > limit then return {0, spent, reserved} end
if redis.call('HEXISTS', KEYS[2], id) == 1 then return {1, spent, reserved} end
redis.call('ZADD', KEYS[1], now, id)
redis.call('HSET', KEYS[2], id, ARGV[4] .. ',0')
redis.call('HINCRBY', KEYS[3], 'reserved', amount)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], window + 60000) end
return {1, spent, reserved + amount}
`)

var reportScript = redis.NewScript(budgetPrelude + `
return {1, spent, reserved}
`)

// settleScript turns a reservation into its actual charge: ARGV[1] the id,
// ARGV[2] the charge.
var settleScript = redis.NewScript(budgetTotals + `
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return 0 end
local amount, settled = string.match(v, '^(%d+),(%d)$')
if settled == '1' then redis.call('HINCRBY', KEYS[3], 'spent', -tonumber(amount))
else redis.call('HINCRBY', KEYS[3], 'reserved', -tonumber(amount)) end
redis.call('HINCRBY', KEYS[3], 'spent', tonumber(ARGV[2]))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ',1')
return 1
`)

var releaseScript = redis.NewScript(budgetTotals + `
local v = redis.call('HGET', KEYS[2], ARGV[1])
if v then
  local amount, settled = string.match(v, '^(%d+),(%d)$')
  if settled == '1' then redis.call('HINCRBY', KEYS[3], 'spent', -tonumber(amount))
  else redis.call('HINCRBY', KEYS[3], 'reserved', -tonumber(amount)) end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`)

// Budgets is the shared ledger of charges per key. It implements
// spending.Budgets.
type Budgets struct{ s *Store }

// Budgets returns the shared budgets.
func (s *Store) Budgets() *Budgets { return &Budgets{s: s} }

func (b *Budgets) keys(key string) []string {
	return []string{b.s.key("budget-at", key), b.s.key("budget-charge", key), b.s.key("budget-totals", key)}
}

func spendOf(v []any, limit int) (state.Spend, bool) {
	ok, _ := v[0].(int64)
	spent, _ := v[1].(int64)
	reserved, _ := v[2].(int64)
	s := state.Spend{Limit: limit, Spent: int(spent), Reserved: int(reserved)}
	s.Left = max(limit-s.Spent-s.Reserved, 0)
	return s, ok == 1
}

// Reserve reserves amount of key's budget for charge id, unless that
// would take key past limit within window, or the budget is all used.
func (b *Budgets) Reserve(ctx context.Context, key, id string, amount, limit int, window time.Duration) (state.Spend, bool, error) {
	v, err := reserveScript.Run(ctx, b.s.c, b.keys(key), window.Milliseconds(), limit, id, max(amount, 0)).Slice()
	if err != nil {
		return state.Spend{}, false, unavailable("budget", err)
	}
	s, ok := spendOf(v, limit)
	return s, ok, nil
}

// Settle records a reservation's actual charge.
func (b *Budgets) Settle(ctx context.Context, key, id string, actual int) error {
	if err := settleScript.Run(ctx, b.s.c, b.keys(key), id, max(actual, 0)).Err(); err != nil {
		return unavailable("budget", err)
	}
	return nil
}

// Release drops a reservation whose run did not start.
func (b *Budgets) Release(ctx context.Context, key, id string) error {
	if err := releaseScript.Run(ctx, b.s.c, b.keys(key), id).Err(); err != nil {
		return unavailable("budget", err)
	}
	return nil
}

// Report says where key's budget stands.
func (b *Budgets) Report(ctx context.Context, key string, limit int, window time.Duration) (state.Spend, error) {
	v, err := reportScript.Run(ctx, b.s.c, b.keys(key), window.Milliseconds()).Slice()
	if err != nil {
		return state.Spend{}, unavailable("budget", err)
	}
	s, _ := spendOf(v, limit)
	return s, nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
