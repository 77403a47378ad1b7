package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/runs"
)

// Records is runs.Records on Redis, so that a handle minted by one replica
// resolves on every other, a replayed call joins the run its first delivery
// started wherever it lands, and a job found in the run list is claimed
// once for all replicas.
//
// Each record is a key of its own, so that steps on different runs never
// disturb each other. The steps that touch one record's own fields (Begin,
// Sent, Renew) are one script each; the others are one optimistic
// transaction (WATCH the keys they read, MULTI/EXEC, retried when another
// replica changed one of them meanwhile) that applies the same rules as
// runs.MemoryRecords (runs.Confirmable, runs.Competes), so no decision rests
// on a reading another replica has since changed. Every key shares one hash
// tag, as transactions and scripts need. A record expires runs.KeepRecords
// after its start answered (or after its latest change, while it has not),
// and its claim and replay entry with it.
type Records struct{ s *Store }

// Records returns the shared run records.
func (s *Store) Records() *Records { return &Records{s: s} }

var _ runs.Records = (*Records)(nil)

// The keys: each record (a hash: body, state, sent, alive); each call key's
// record, for replays; each job's claim (the handle that owns it) and its
// holders (the records whose job it is, to hand a claim back); per kind,
// the handles still pending or unknown (the only records that can
// compete).
func (rr *Records) k(name string) string        { return rr.s.prefix + "runs:{records}:" + name }
func (rr *Records) recKey(handle string) string { return rr.k("rec:" + handle) }
func (rr *Records) callKey(tenant, call string) string {
	return rr.k("call:" + tenant + "\x00" + call)
}
func (rr *Records) claimKey(job string) string   { return rr.k("claim:" + job) }
func (rr *Records) holdersKey(job string) string { return rr.k("holders:" + job) }
func (rr *Records) activeKey(kind string) string { return rr.k("active:" + kind) }

// wire is a Record's body as stored: the start's failure is kept as its
// text. State, LastSent and AliveUntil are fields of their own, which the
// scripts change; they win over the body's.
type wire struct {
	runs.Record
	Err string `json:"err_text,omitempty"`
}

func encode(r runs.Record) (string, error) {
	w := wire{Record: r}
	if r.Err != nil {
		w.Err = r.Err.Error()
	}
	w.Record.Err = nil
	if r.Look != nil {
		// A look is never modified once recorded: store a copy without the
		// upstream's own data (rendering reads jobs anew).
		lk := *r.Look
		lk.Candidates = make([]runs.Job, len(r.Look.Candidates))
		for i, j := range r.Look.Candidates {
			j.Data = nil
			lk.Candidates[i] = j
		}
		w.Record.Look = &lk
	}
	b, err := json.Marshal(w)
	return string(b), err
}

// decode reads a record's hash; ok is false when there is none.
func decode(fields map[string]string) (r runs.Record, ok bool, err error) {
	body, ok := fields["body"]
	if !ok {
		return runs.Record{}, false, nil
	}
	var w wire
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		return runs.Record{}, false, fmt.Errorf("a run record cannot be read: %w", err)
	}
	r = w.Record
	if w.Err != "" {
		r.Err = errors.New(w.Err)
	}
	if s, err := strconv.Atoi(fields["state"]); err == nil {
		r.State = runs.State(s)
	}
	r.LastSent = unixNano(fields["sent"], r.LastSent)
	r.AliveUntil = unixNano(fields["alive"], r.AliveUntil)
	return r, true, nil
}

func unixNano(s string, or time.Time) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return or
	}
	return time.Unix(0, n)
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// expiry is when r is forgotten: runs.KeepRecords after its start answered,
// or after now while it has not (each change renews it, so only a record
// nobody touches for that long goes: its sender and watchers are gone).
func expiry(r runs.Record, now time.Time) time.Time {
	if !r.Finished.IsZero() {
		return r.Finished.Add(runs.KeepRecords)
	}
	return now.Add(runs.KeepRecords)
}

// write queues r with its expiry, and its place in its kind's active set
// and in its job's holders (previousJob: the job it held before, if
// another).
func (rr *Records) write(ctx context.Context, p redis.Pipeliner, r runs.Record, previousJob string) error {
	body, err := encode(r)
	if err != nil {
		return err
	}
	now := time.Now()
	until := expiry(r, now)
	key := rr.recKey(r.Handle)
	if !until.After(now) {
		p.Del(ctx, key)
		p.SRem(ctx, rr.activeKey(r.Kind), r.Handle)
		return nil
	}
	p.HSet(ctx, key, "body", body, "state", int(r.State), "sent", nanos(r.LastSent), "alive", nanos(r.AliveUntil))
	p.PExpireAt(ctx, key, until)
	if r.State == runs.StatePending || r.State == runs.StateUnknown {
		p.SAdd(ctx, rr.activeKey(r.Kind), r.Handle)
	} else {
		p.SRem(ctx, rr.activeKey(r.Kind), r.Handle)
	}
	p.PExpireAt(ctx, rr.activeKey(r.Kind), now.Add(runs.KeepRecords+time.Hour)) // an idle kind's set goes too
	if previousJob != "" && previousJob != r.JobID {
		p.SRem(ctx, rr.holdersKey(previousJob), r.Handle)
	}
	// Its replay entry and its claim (when still its own) expire with it,
	// and its job's holders with the last of them.
	call, claim, holders := key, key, key // the record's key: none
	if r.CallKey != "" {
		call = rr.callKey(r.Tenant, r.CallKey)
	}
	if r.JobID != "" {
		p.SAdd(ctx, rr.holdersKey(r.JobID), r.Handle)
		claim, holders = rr.claimKey(r.JobID), rr.holdersKey(r.JobID)
	}
	keepScript.Eval(ctx, p, []string{key, call, claim, holders}, r.Handle, until.UnixMilli())
	return nil
}

// keepScript sets the expiry of a record's other keys: KEYS[1] the record,
// KEYS[2] its call key, KEYS[3] its job's claim, KEYS[4] its job's holders
// (each KEYS[1] for none); ARGV[1] its handle, ARGV[2] its expiry (ms since
// the epoch). The call key and the claim follow the record while they name
// it; the holders last until their last record goes.
var keepScript = redis.NewScript(`
for i = 2, 3 do
  if KEYS[i] ~= KEYS[1] and redis.call("GET", KEYS[i]) == ARGV[1] then
    redis.call("PEXPIREAT", KEYS[i], ARGV[2])
  end
end
if KEYS[4] ~= KEYS[1] then
  local at = redis.call("PEXPIRETIME", KEYS[4])
  if at == -1 or (at >= 0 and at < tonumber(ARGV[2])) then
    redis.call("PEXPIREAT", KEYS[4], ARGV[2])
  end
end
return 0
`)

// claim queues job's claim for handle, kept as long as handle's record.
func (rr *Records) claim(ctx context.Context, p redis.Pipeliner, job, handle string, r runs.Record) {
	if until := expiry(r, time.Now()); until.After(time.Now()) {
		p.Set(ctx, rr.claimKey(job), handle, 0)
		p.PExpireAt(ctx, rr.claimKey(job), until)
	}
}

// step runs f as one optimistic transaction over the keys it watches,
// retrying when another replica changed one of them meanwhile.
func (rr *Records) step(ctx context.Context, op string, f func(tx *redis.Tx) error, keys ...string) error {
	// Back off exponentially with full jitter, for up to stepPatience,
	// rather than give up after a fixed number of tries.
	giveUp := time.Now().Add(stepPatience)
	for attempt := 0; ; attempt++ {
		err := rr.s.c.Watch(ctx, f, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			if err != nil && !errors.Is(err, errNoRecord) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return unavailable(op, err)
			}
			return nil
		}
		if time.Now().After(giveUp) {
			return unavailable(op, errors.New("the records kept changing; try again"))
		}
		// Another replica changed the records: read them again.
		backoff := min(time.Millisecond<<min(attempt, 10), 64*time.Millisecond)
		select {
		case <-time.After(rand.N(backoff) + 100*time.Microsecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stepPatience bounds how long a record step retries while other replicas
// change the keys it read.
const stepPatience = 5 * time.Second

var errNoRecord = errors.New("no such record")

// read reads handle's record within a transaction, or errNoRecord.
func (rr *Records) read(ctx context.Context, c redis.Cmdable, handle string) (runs.Record, error) {
	fields, err := c.HGetAll(ctx, rr.recKey(handle)).Result()
	if err != nil {
		return runs.Record{}, err
	}
	r, ok, err := decode(fields)
	if err == nil && !ok {
		err = errNoRecord
	}
	return r, err
}

// beginScript records a new submission unless its call was made before:
// KEYS[1] the call key (KEYS[2] again for none: a key "" would hash to
// another slot, which Redis Cluster refuses), KEYS[2] the new record, KEYS[3] its
// kind's active set; ARGV: the handle, its body, state, sent and alive
// fields, the record's expiry (ms since the epoch), closed ("1": record
// nothing new), and the key prefix of records. It returns {"replay", h}
// with the first delivery's handle, {"closed"} or {"new"}. The first
// delivery's record is read by name: it shares the hash tag of the keys
// given.
var beginScript = redis.NewScript(`
if KEYS[1] ~= KEYS[2] then
  local h = redis.call("GET", KEYS[1])
  if h and redis.call("EXISTS", ARGV[8] .. h) == 1 then
    return {"replay", h}
  end
end
if ARGV[7] == "1" then
  return {"closed"}
end
redis.call("HSET", KEYS[2], "body", ARGV[2], "state", ARGV[3], "sent", ARGV[4], "alive", ARGV[5])
redis.call("PEXPIREAT", KEYS[2], ARGV[6])
redis.call("SADD", KEYS[3], ARGV[1])
redis.call("PEXPIREAT", KEYS[3], ARGV[6] + 3600000)
if KEYS[1] ~= KEYS[2] then
  redis.call("SET", KEYS[1], ARGV[1], "PXAT", ARGV[6])
end
return {"new"}
`)

// Begin implements runs.Records: one script.
func (rr *Records) Begin(ctx context.Context, rec runs.Record, closed bool) (runs.Record, bool, error) {
	rec.State = runs.StatePending
	body, err := encode(rec)
	if err != nil {
		return runs.Record{}, false, err
	}
	callKey := rr.recKey(rec.Handle)
	if rec.CallKey != "" {
		callKey = rr.callKey(rec.Tenant, rec.CallKey)
	}
	closedArg := "0"
	if closed {
		closedArg = "1"
	}
	keys := []string{callKey, rr.recKey(rec.Handle), rr.activeKey(rec.Kind)}
	res, err := beginScript.Run(ctx, rr.s.c, keys, rec.Handle, body, int(rec.State), nanos(rec.LastSent),
		nanos(rec.AliveUntil), expiry(rec, time.Now()).UnixMilli(), closedArg, rr.recKey("")).StringSlice()
	if err != nil {
		return runs.Record{}, false, unavailable("run records", err)
	}
	switch res[0] {
	case "replay":
		first, err := rr.read(ctx, rr.s.c, res[1])
		if errors.Is(err, errNoRecord) { // forgotten just now: a new call after all
			return rr.Begin(ctx, rec, closed)
		}
		if err != nil {
			return runs.Record{}, false, unavailable("run records", err)
		}
		return first, true, nil
	case "closed":
		return runs.Record{}, false, nil
	}
	rr.s.begun.put(rec.Handle, body)
	return rec, false, nil
}

// Get implements runs.Records.
func (rr *Records) Get(ctx context.Context, handle, tenant string) (runs.Record, bool, error) {
	r, err := rr.read(ctx, rr.s.c, handle)
	switch {
	case errors.Is(err, errNoRecord):
		return runs.Record{}, false, nil
	case err != nil:
		return runs.Record{}, false, unavailable("run records", err)
	case r.Tenant != tenant:
		return runs.Record{}, false, nil
	}
	return r, true, nil
}

// update applies f to handle's record in one transaction.
func (rr *Records) update(ctx context.Context, handle string, f func(*runs.Record)) (runs.Record, error) {
	var out runs.Record
	key := rr.recKey(handle)
	err := rr.step(ctx, "run records", func(tx *redis.Tx) error {
		out = runs.Record{} // a retry starts afresh: a record gone meanwhile returns none
		r, err := rr.read(ctx, tx, handle)
		if err != nil {
			return err
		}
		job := r.JobID
		f(&r)
		out = r
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return rr.write(ctx, p, r, job) })
		return err
	}, key)
	return out, err
}

// sentScript records a start request's sending, for a pending record:
// KEYS[1] the record; ARGV[1] when (ns). It returns "none" (no record),
// "orphaned" (no longer pending) or "ok".
var sentScript = redis.NewScript(`
local state = redis.call("HGET", KEYS[1], "state")
if not state then return "none" end
if state ~= "0" then return "orphaned" end
redis.call("HSET", KEYS[1], "sent", ARGV[1])
return "ok"
`)

// Sent implements runs.Records: one script.
func (rr *Records) Sent(ctx context.Context, handle string, at time.Time) error {
	res, err := sentScript.Run(ctx, rr.s.c, []string{rr.recKey(handle)}, nanos(at)).Text()
	switch {
	case err != nil:
		return unavailable("run records", err)
	case res == "orphaned":
		return runs.ErrOrphaned
	}
	return nil
}

// renewScript extends a pending record's sender lease: KEYS[1] the record;
// ARGV[1] until (ns).
var renewScript = redis.NewScript(`
if redis.call("HGET", KEYS[1], "state") == "0" then
  redis.call("HSET", KEYS[1], "alive", ARGV[1])
end
return 0
`)

// Renew implements runs.Records: one script.
func (rr *Records) Renew(ctx context.Context, handle string, until time.Time) error {
	if err := renewScript.Run(ctx, rr.s.c, []string{rr.recKey(handle)}, nanos(until)).Err(); err != nil {
		return unavailable("run records", err)
	}
	return nil
}

// Finish implements runs.Records.
func (rr *Records) Finish(ctx context.Context, handle string, a runs.Answer) (runs.Record, string, error) {
	if out, ok, err := rr.finishBegun(ctx, handle, a); ok || err != nil {
		return out, "", err
	}
	var out runs.Record
	var previous string
	err := rr.step(ctx, "run records", func(tx *redis.Tx) error {
		out, previous = runs.Record{}, "" // a retry starts afresh
		r, err := rr.read(ctx, tx, handle)
		if err != nil {
			return err
		}
		previous = r.JobID
		r = answered(r, a)
		// The claims this step reads or writes are watched too (the record
		// is, so its job cannot change before EXEC).
		watch := []string{}
		if previous != "" {
			watch = append(watch, rr.claimKey(previous), rr.holdersKey(previous))
		}
		if a.JobID != "" {
			watch = append(watch, rr.claimKey(a.JobID))
		}
		if len(watch) > 0 {
			if err := tx.Watch(ctx, watch...).Err(); err != nil {
				return err
			}
		}
		// A job the list had suggested goes back to another record that
		// holds it, if any.
		var heir runs.Record
		if previous != "" && r.JobID != previous {
			if heir, err = rr.heir(ctx, tx, previous, handle); err != nil {
				return err
			}
		}
		out = r
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if previous != "" && r.JobID != previous {
				if heir.Handle != "" {
					rr.claim(ctx, p, previous, heir.Handle, heir)
				} else {
					p.Del(ctx, rr.claimKey(previous))
				}
			}
			if r.JobID != "" {
				rr.claim(ctx, p, r.JobID, handle, r)
			}
			return rr.write(ctx, p, r, previous)
		})
		return err
	}, rr.recKey(handle))
	return out, previous, err
}

// heir returns another record than except whose job is job (watching it),
// or the zero Record.
func (rr *Records) heir(ctx context.Context, tx *redis.Tx, job, except string) (runs.Record, error) {
	holders, err := tx.SMembers(ctx, rr.holdersKey(job)).Result()
	if err != nil {
		return runs.Record{}, err
	}
	for _, h := range holders {
		if h == except {
			continue
		}
		if err := tx.Watch(ctx, rr.recKey(h)).Err(); err != nil {
			return runs.Record{}, err
		}
		o, err := rr.read(ctx, tx, h)
		if errors.Is(err, errNoRecord) {
			continue
		}
		if err != nil {
			return runs.Record{}, err
		}
		if o.JobID == job {
			return o, nil
		}
	}
	return runs.Record{}, nil
}

// unclaimed drops the jobs claimed by a record other than handle.
func (rr *Records) unclaimed(ctx context.Context, c redis.Cmdable, handle string, rows []runs.Job) ([]runs.Job, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	keys := make([]string, len(rows))
	for i, j := range rows {
		keys[i] = rr.claimKey(j.ID)
	}
	owners, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	kept := rows[:0:0]
	for i, j := range rows {
		owner, claimed := owners[i].(string)
		if !claimed || (handle != "" && owner == handle) {
			kept = append(kept, j)
		}
	}
	return kept, nil
}

// competitors reads, watching them, the records of kind that may compete
// (pending or unknown). Handles whose record is gone are dropped from the
// set by the caller's transaction (stale).
func (rr *Records) competitors(ctx context.Context, tx *redis.Tx, kind string) (others []runs.Record, stale []string, err error) {
	// The set is watched before it is read, whatever the caller watched:
	// the kind it read before the transaction may be wrong ("" when that
	// read failed).
	if err := tx.Watch(ctx, rr.activeKey(kind)).Err(); err != nil {
		return nil, nil, err
	}
	handles, err := tx.SMembers(ctx, rr.activeKey(kind)).Result()
	if err != nil || len(handles) == 0 {
		return nil, nil, err
	}
	keys := make([]string, len(handles))
	for i, h := range handles {
		keys[i] = rr.recKey(h)
	}
	// Watched from here: a competitor that changes before EXEC makes the
	// step read them again.
	if err := tx.Watch(ctx, keys...).Err(); err != nil {
		return nil, nil, err
	}
	cmds, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.HGetAll(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, c := range cmds {
		fields, err := c.(*redis.MapStringStringCmd).Result()
		if err != nil {
			return nil, nil, err
		}
		r, ok, err := decode(fields)
		switch {
		case err != nil:
			// A competitor that cannot be read may have started the job:
			// refuse to decide (fail closed) rather than leave it out.
			return nil, nil, err
		case !ok:
			stale = append(stale, handles[i])
		default:
			others = append(others, r)
		}
	}
	return others, stale, nil
}

// kindOf reads handle's kind (it never changes), to know which keys to
// watch.
func (rr *Records) kindOf(ctx context.Context, handle string) string {
	r, err := rr.read(ctx, rr.s.c, handle)
	if err != nil {
		return ""
	}
	return r.Kind
}

// claimKeys are the claim keys of lk's candidates.
func (rr *Records) claimKeys(lk runs.Look) []string {
	keys := make([]string, len(lk.Candidates))
	for i, j := range lk.Candidates {
		keys[i] = rr.claimKey(j.ID)
	}
	return keys
}

// Settle implements runs.Records.
func (rr *Records) Settle(ctx context.Context, handle string, lk runs.Look, rules runs.Rules) (runs.Settled, error) {
	var out runs.Settled
	kind := rr.kindOf(ctx, handle)
	keys := append([]string{rr.recKey(handle), rr.activeKey(kind)}, rr.claimKeys(lk)...)
	err := rr.step(ctx, "run records", func(tx *redis.Tx) error {
		out = runs.Settled{} // a retry starts afresh
		r, err := rr.read(ctx, tx, handle)
		if err != nil {
			return err
		}
		if r.State != runs.StateUnknown {
			out = runs.Settled{Record: r}
			return nil
		}
		look := lk
		if look.Candidates, err = rr.unclaimed(ctx, tx, handle, lk.Candidates); err != nil {
			return err
		}
		others, stale, err := rr.competitors(ctx, tx, r.Kind)
		if err != nil {
			return err
		}
		previous, job := r.Look, r.JobID
		r.Look = &look
		claim := ""
		switch {
		case runs.Confirmable(r, look, rules, others):
			r.State, r.JobID = runs.StateStarted, look.Candidates[0].ID
			claim = r.JobID
		case len(look.Candidates) == 0 && look.Final:
			r.State = runs.StateNotStarted
		}
		out = runs.Settled{Record: r, Applied: true, Previous: previous}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if len(stale) > 0 {
				p.SRem(ctx, rr.activeKey(r.Kind), stale)
			}
			if claim != "" {
				rr.claim(ctx, p, claim, handle, r)
			}
			return rr.write(ctx, p, r, job)
		})
		return err
	}, keys...)
	return out, err
}

// ConfirmPending implements runs.Records.
func (rr *Records) ConfirmPending(ctx context.Context, handle string, lk runs.Look, rules runs.Rules) (runs.Record, *runs.Job, error) {
	var out runs.Record
	var job *runs.Job
	kind := rr.kindOf(ctx, handle)
	keys := append([]string{rr.recKey(handle), rr.activeKey(kind)}, rr.claimKeys(lk)...)
	err := rr.step(ctx, "run records", func(tx *redis.Tx) error {
		out, job = runs.Record{}, nil // a retry starts afresh
		r, err := rr.read(ctx, tx, handle)
		if err != nil {
			return err
		}
		out = r
		if r.State != runs.StatePending {
			return nil
		}
		look := lk
		if look.Candidates, err = rr.unclaimed(ctx, tx, handle, lk.Candidates); err != nil {
			return err
		}
		others, stale, err := rr.competitors(ctx, tx, r.Kind)
		if err != nil {
			return err
		}
		if !runs.Confirmable(r, look, rules, others) {
			return nil
		}
		j := look.Candidates[0]
		previousJob := r.JobID
		r.State, r.JobID = runs.StateStarted, j.ID
		out, job = r, &j
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if len(stale) > 0 {
				p.SRem(ctx, rr.activeKey(r.Kind), stale)
			}
			rr.claim(ctx, p, j.ID, handle, r)
			return rr.write(ctx, p, r, previousJob)
		})
		return err
	}, keys...)
	return out, job, err
}

// Abandon implements runs.Records.
func (rr *Records) Abandon(ctx context.Context, handle string) (runs.Record, error) {
	return rr.update(ctx, handle, func(r *runs.Record) { r.Abandoned = true })
}

// Watch implements runs.Records.
func (rr *Records) Watch(ctx context.Context, handle string, watched bool) (runs.Record, error) {
	return rr.update(ctx, handle, func(r *runs.Record) { r.Watched = watched })
}

// Orphan implements runs.Records.
func (rr *Records) Orphan(ctx context.Context, handle string, createTimeout time.Duration) (runs.Record, error) {
	return rr.update(ctx, handle, func(r *runs.Record) {
		if gone, until := r.Orphaned(createTimeout, time.Now()); gone {
			r.State, r.Finished, r.Err = runs.StateUnknown, until, runs.ErrOrphaned
		}
	})
}

// Unclaimed implements runs.Records.
func (rr *Records) Unclaimed(ctx context.Context, rows []runs.Job, handle string) ([]runs.Job, error) {
	kept, err := rr.unclaimed(ctx, rr.s.c, handle, rows)
	if err != nil {
		return nil, unavailable("run records", err)
	}
	return kept, nil
}
