package redisstate

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/state"
)

// Turns is state.Turns on Redis: each key's line of callers for an
// upstream that runs one job at a time with a cooldown (BetterWaifu),
// shared by every replica. A caller's place is a lease that each Try
// renews, so that a replica that dies leaves no one blocking the line; the
// turn is held until Finish, or MaxHold, and a late Finish of an expired
// hold changes nothing (the ticket is the fencing token).
type Turns struct {
	s        *Store
	cooldown time.Duration
	maxHold  time.Duration
	// placeTTL is how long a place in line lasts without a Try.
	placeTTL time.Duration
}

// Turns returns the shared lines with the given cooldown; holds last at
// most maxHold (default 30 minutes).
func (s *Store) Turns(cooldown, maxHold time.Duration) *Turns {
	if maxHold <= 0 {
		maxHold = 30 * time.Minute
	}
	return &Turns{s: s, cooldown: cooldown, maxHold: maxHold, placeTTL: 30 * time.Second}
}

// The line of a key: KEYS[1] a sorted set of tickets by arrival (a
// counter), KEYS[2] a sorted set of tickets by when their place expires,
// KEYS[3] a hash {holder, held_at, started, free_at, seq}. Times are ms on
// Redis's clock. Every script first drops expired places and an expired
// hold; the keys live until the line is free (free_at) and beyond the
// longest place or hold.
const turnsPrelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cooldown, maxhold, placettl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, tk in ipairs(gone) do redis.call('ZREM', KEYS[1], tk) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local holder = redis.call('HGET', KEYS[3], 'holder') or ''
local heldat = tonumber(redis.call('HGET', KEYS[3], 'held_at') or '0')
local freeat = tonumber(redis.call('HGET', KEYS[3], 'free_at') or '0')
if holder ~= '' and now - heldat > maxhold then
  holder = ''
  redis.call('HSET', KEYS[3], 'holder', '', 'started', '0')
  if heldat + maxhold + cooldown > freeat then
    freeat = heldat + maxhold + cooldown
    redis.call('HSET', KEYS[3], 'free_at', string.format('%.0f', freeat))
  end
end
local function keep()
  local ttl = math.max(placettl, maxhold + cooldown, freeat - now) + 60000
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
`

// A ticket is its place's counter and a random nonce (ARGV[4]): the
// counter restarts when the line's keys are gone (expired, or a restart),
// and the ticket is the fencing token of a hold, never to be reused.
var enterScript = redis.NewScript(turnsPrelude + `
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
local ticket = tostring(seq) .. '-' .. ARGV[4]
redis.call('ZADD', KEYS[1], seq, ticket)
redis.call('ZADD', KEYS[2], now + placettl, ticket)
keep()
return ticket
`)

var tryScript = redis.NewScript(turnsPrelude + `
local ticket = ARGV[4]
if holder == ticket then return {1, 0, 0, 0, 0} end
local pos = redis.call('ZRANK', KEYS[1], ticket)
if not pos then return {-1, 0, 0, 0, 0} end
if pos == 0 and holder == '' and now >= freeat then
  redis.call('ZREM', KEYS[1], ticket)
  redis.call('ZREM', KEYS[2], ticket)
  redis.call('HSET', KEYS[3], 'holder', ticket, 'held_at', string.format('%.0f', now), 'started', '0')
  keep()
  return {1, 0, 0, 0, 0}
end
redis.call('ZADD', KEYS[2], now + placettl, ticket)
keep()
local busy = 0
if holder ~= '' then busy = 1 end
local base = math.max(now, freeat)
local shownfree = 0
if busy == 1 and redis.call('HGET', KEYS[3], 'started') == '1' then
  base = math.max(base, now + cooldown)
elseif busy == 0 and freeat > now then
  shownfree = freeat
end
return {0, pos, busy, string.format('%.0f', base + pos * cooldown), string.format('%.0f', shownfree)}
`)

var startedScript = redis.NewScript(turnsPrelude + `
if holder == ARGV[4] then redis.call('HSET', KEYS[3], 'started', '1') end
return 1
`)

var finishScript = redis.NewScript(turnsPrelude + `
if holder ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[3], 'holder', '', 'started', '0')
local f = tonumber(ARGV[5])
if f > freeat then
  freeat = f
  redis.call('HSET', KEYS[3], 'free_at', string.format('%.0f', f))
end
keep()
return 1
`)

var deferScript = redis.NewScript(turnsPrelude + `
local f = tonumber(ARGV[4])
if f > freeat then
  freeat = f
  redis.call('HSET', KEYS[3], 'free_at', string.format('%.0f', f))
end
keep()
return 1
`)

var leaveScript = redis.NewScript(turnsPrelude + `
redis.call('ZREM', KEYS[1], ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[4])
return 1
`)

func (tr *Turns) keys(key string) []string {
	return []string{tr.s.key("line", key), tr.s.key("line-places", key), tr.s.key("line-turn", key)}
}

func (tr *Turns) args(extra ...any) []any {
	return append([]any{tr.cooldown.Milliseconds(), tr.maxHold.Milliseconds(), tr.placeTTL.Milliseconds()}, extra...)
}

// WithPlaceTTL sets how long a place in line lasts without a Try (default
// 30 s); callers Try at least every few seconds.
func (tr *Turns) WithPlaceTTL(d time.Duration) *Turns {
	tr.placeTTL = d
	return tr
}

// Enter puts a caller at the end of key's line.
func (tr *Turns) Enter(ctx context.Context, key string) (string, error) {
	ticket, err := enterScript.Run(ctx, tr.s.c, tr.keys(key), tr.args(newID())...).Text()
	if err != nil {
		return "", unavailable("line", err)
	}
	return ticket, nil
}

// Try grants the turn when it is the caller's, or says where it stands.
// Changed is nil: replicas cannot signal each other, so callers poll.
func (tr *Turns) Try(ctx context.Context, key, ticket string) (state.TurnState, error) {
	v, err := tryScript.Run(ctx, tr.s.c, tr.keys(key), tr.args(ticket)...).Slice()
	if err != nil {
		return state.TurnState{}, unavailable("line", err)
	}
	granted, _ := v[0].(int64)
	switch granted {
	case 1:
		return state.TurnState{Granted: true}, nil
	case -1:
		return state.TurnState{}, state.ErrNotInLine
	}
	ahead, _ := v[1].(int64)
	busy, _ := v[2].(int64)
	st := state.TurnState{Ahead: int(ahead), Busy: busy == 1, Earliest: msTime(v[3])}
	if f := msTime(v[4]); f.UnixMilli() > 0 {
		st.FreeAt = f
	}
	return st, nil
}

// Started records that the holder's job has started.
func (tr *Turns) Started(ctx context.Context, key, ticket string) error {
	if err := startedScript.Run(ctx, tr.s.c, tr.keys(key), tr.args(ticket)...).Err(); err != nil {
		return unavailable("line", err)
	}
	return nil
}

// Finish ends ticket's turn; the next starts no earlier than freeAt. A
// ticket that no longer holds the turn changes nothing.
func (tr *Turns) Finish(ctx context.Context, key, ticket string, freeAt time.Time) error {
	f := int64(0)
	if !freeAt.IsZero() {
		f = freeAt.UnixMilli()
	}
	if err := finishScript.Run(ctx, tr.s.c, tr.keys(key), tr.args(ticket, f)...).Err(); err != nil {
		return unavailable("line", err)
	}
	return nil
}

// Defer moves key's next turn to until at the earliest.
func (tr *Turns) Defer(ctx context.Context, key string, until time.Time) error {
	if err := deferScript.Run(ctx, tr.s.c, tr.keys(key), tr.args(until.UnixMilli())...).Err(); err != nil {
		return unavailable("line", err)
	}
	return nil
}

// Leave takes a caller that has not got the turn out of line.
func (tr *Turns) Leave(ctx context.Context, key, ticket string) error {
	if err := leaveScript.Run(ctx, tr.s.c, tr.keys(key), tr.args(ticket)...).Err(); err != nil {
		return unavailable("line", err)
	}
	return nil
}

// msTime reads a script's millisecond time (a string, to keep precision).
func msTime(v any) time.Time {
	var ms int64
	switch x := v.(type) {
	case string:
		ms, _ = strconv.ParseInt(x, 10, 64)
	case int64:
		ms = x
	}
	return time.UnixMilli(ms)
}
