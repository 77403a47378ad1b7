package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/runs"
)

// The start request's answer is recorded on every paid run, usually by the
// process that began its record a moment before. That process knows the
// record's body as it wrote it: when the body is still the same (nothing
// but the sender's own Sent and Renew, which touch other fields, happened
// since), one script records the answer, in place of an optimistic
// transaction of four round trips. Any other change sends Finish down that
// transaction, which applies the same rules (answered) to what it reads.

// begunBodies holds the body of each record this process began and has not
// finished, up to maxBegun of them (past that, Finish reads the record).
type begunBodies struct {
	mu       sync.Mutex
	byHandle map[string]string
}

// maxBegun bounds begunBodies: a record whose start request never answers
// here (the process stopped waiting) would otherwise stay for good.
const maxBegun = 10_000

func (b *begunBodies) put(handle, body string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.byHandle) >= maxBegun {
		for h := range b.byHandle { // any one: its Finish reads the record
			delete(b.byHandle, h)
			break
		}
	}
	b.byHandle[handle] = body
}

// take returns handle's body and forgets it: a record is finished once.
func (b *begunBodies) take(handle string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	body, ok := b.byHandle[handle]
	delete(b.byHandle, handle)
	return body, ok
}

// answered is r with the start request's answer a, the rule both ways of
// finishing apply (runs.MemoryRecords.Finish's).
func answered(r runs.Record, a runs.Answer) runs.Record {
	switch {
	case a.JobID != "":
		r.State, r.JobID = runs.StateStarted, a.JobID
	case a.Unknown:
		r.Err = a.Err
		if r.State != runs.StateStarted { // the job list may have settled it already
			r.State, r.Watched = runs.StateUnknown, true
		}
	default:
		r.State, r.Err, r.JobID = runs.StateRefused, a.Err, "" // nothing was started
	}
	r.Finished = a.At
	return r
}

// finishBegunScript records a start request's answer on a record whose body is
// still ARGV[1], as write and claim would: KEYS[1] the record, KEYS[2] its
// kind's active set, KEYS[3] its job's claim and KEYS[4] its job's holders
// (KEYS[1] for no job), KEYS[5] its call key (KEYS[1] for none); ARGV[2]
// the new body, ARGV[3] its state, ARGV[4] its expiry (ms since the
// epoch), ARGV[5] the handle, ARGV[6] "1" to keep it in the active set,
// ARGV[7] the active set's expiry. It returns {"changed"}, or {"ok", the
// sent field, the alive field}.
var finishBegunScript = redis.NewScript(`
if redis.call("HGET", KEYS[1], "body") ~= ARGV[1] then
  return {"changed"}
end
redis.call("HSET", KEYS[1], "body", ARGV[2], "state", ARGV[3])
redis.call("PEXPIREAT", KEYS[1], ARGV[4])
if ARGV[6] == "1" then
  redis.call("SADD", KEYS[2], ARGV[5])
else
  redis.call("SREM", KEYS[2], ARGV[5])
end
redis.call("PEXPIREAT", KEYS[2], ARGV[7])
if KEYS[3] ~= KEYS[1] then
  redis.call("SET", KEYS[3], ARGV[5], "PXAT", ARGV[4])
  redis.call("SADD", KEYS[4], ARGV[5])
  local at = redis.call("PEXPIRETIME", KEYS[4])
  if at == -1 or (at >= 0 and at < tonumber(ARGV[4])) then
    redis.call("PEXPIREAT", KEYS[4], ARGV[4])
  end
end
if KEYS[5] ~= KEYS[1] and redis.call("GET", KEYS[5]) == ARGV[5] then
  redis.call("PEXPIREAT", KEYS[5], ARGV[4])
end
return {"ok", redis.call("HGET", KEYS[1], "sent") or "", redis.call("HGET", KEYS[1], "alive") or ""}
`)

// finishBegun records a on a record this process began, in one script; ok
// is false when Finish must take the transaction (a record begun
// elsewhere, or changed since).
func (rr *Records) finishBegun(ctx context.Context, handle string, a runs.Answer) (out runs.Record, ok bool, err error) {
	body, ok := rr.s.begun.take(handle)
	if !ok {
		return runs.Record{}, false, nil
	}
	var w wire
	if err := json.Unmarshal([]byte(body), &w); err != nil || w.JobID != "" || w.Err != "" {
		return runs.Record{}, false, nil // not as Begin writes it: read it
	}
	r := answered(w.Record, a)
	now := time.Now()
	until := expiry(r, now)
	if !until.After(now) {
		return runs.Record{}, false, nil // write deletes it
	}
	newBody, err := encode(r)
	if err != nil {
		return runs.Record{}, false, err
	}
	key := rr.recKey(handle)
	claim, holders, call := key, key, key
	if r.JobID != "" {
		claim, holders = rr.claimKey(r.JobID), rr.holdersKey(r.JobID)
	}
	if r.CallKey != "" {
		call = rr.callKey(r.Tenant, r.CallKey)
	}
	active := "0"
	if r.State == runs.StatePending || r.State == runs.StateUnknown {
		active = "1"
	}
	res, err := finishBegunScript.Run(ctx, rr.s.c, []string{key, rr.activeKey(r.Kind), claim, holders, call},
		body, newBody, int(r.State), until.UnixMilli(), handle, active,
		now.Add(runs.KeepRecords+time.Hour).UnixMilli()).StringSlice()
	switch {
	case errors.Is(err, redis.Nil):
		return runs.Record{}, false, nil
	case err != nil:
		return runs.Record{}, false, unavailable("run records", err)
	case res[0] != "ok":
		return runs.Record{}, false, nil // changed by another replica: the transaction reads it
	}
	r.LastSent = unixNano(res[1], r.LastSent)
	r.AliveUntil = unixNano(res[2], r.AliveUntil)
	return r, true, nil
}
