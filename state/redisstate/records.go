package redisstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/runs"
)

// Records is runs.Records on Redis, so that a handle minted by one replica
// resolves on every other, a replayed call joins the run its first delivery
// started wherever it lands, and a job found in the run list is claimed
// once for all replicas.
//
// Every step is one optimistic Redis transaction (WATCH, read, MULTI/EXEC,
// retried when another replica changed the records meanwhile) that applies
// the same rules as runs.MemoryRecords (runs.Confirmable, runs.Competes), so
// no decision rests on a reading another replica has since changed. All its
// keys share one hash tag, as a transaction needs; records are kept
// runs.KeepRecords after their start answered.
type Records struct {
	s         *Store
	lastSweep atomic.Int64 // unix ns of this replica's latest sweep
}

// Records returns the shared run records.
func (s *Store) Records() *Records { return &Records{s: s} }

var _ runs.Records = (*Records)(nil)

func (rr *Records) k(name string) string { return rr.s.prefix + "runs:{records}:" + name }

// The keys: every record by handle; replays by tenant and call key; claims
// by job id; per kind, the handles still pending or unknown (the only
// records that can compete); and when each record finished, for expiry.
func (rr *Records) recKey() string               { return rr.k("rec") }
func (rr *Records) callKey() string              { return rr.k("call") }
func (rr *Records) claimKey() string             { return rr.k("claim") }
func (rr *Records) activeKey(kind string) string { return rr.k("active:" + kind) }
func (rr *Records) finishedKey() string          { return rr.k("finished") }

// wire is a Record as stored: the start's failure is kept as its text.
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

func decode(s string) (runs.Record, error) {
	var w wire
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return runs.Record{}, fmt.Errorf("a run record cannot be read: %w", err)
	}
	r := w.Record
	if w.Err != "" {
		r.Err = errors.New(w.Err)
	}
	return r, nil
}

// step runs f as one optimistic transaction over the keys it watches,
// retrying when another replica changed them meanwhile.
func (rr *Records) step(ctx context.Context, op string, f func(tx *redis.Tx) error, keys ...string) error {
	// Every step watches the one hash of records, so a busy fleet makes
	// steps retry: back off exponentially with full jitter, for up to
	// stepPatience, rather than give up after a fixed number of tries.
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
// change the records.
const stepPatience = 5 * time.Second

var errNoRecord = errors.New("no such record")

func (rr *Records) read(ctx context.Context, tx *redis.Tx, handle string) (runs.Record, error) {
	s, err := tx.HGet(ctx, rr.recKey(), handle).Result()
	if errors.Is(err, redis.Nil) {
		return runs.Record{}, errNoRecord
	}
	if err != nil {
		return runs.Record{}, err
	}
	return decode(s)
}

// write queues r, and its place in the active and finished indexes.
func (rr *Records) write(ctx context.Context, p redis.Pipeliner, r runs.Record) error {
	s, err := encode(r)
	if err != nil {
		return err
	}
	p.HSet(ctx, rr.recKey(), r.Handle, s)
	if r.State == runs.StatePending || r.State == runs.StateUnknown {
		p.SAdd(ctx, rr.activeKey(r.Kind), r.Handle)
	} else {
		p.SRem(ctx, rr.activeKey(r.Kind), r.Handle)
	}
	if !r.Finished.IsZero() {
		p.ZAdd(ctx, rr.finishedKey(), redis.Z{Score: float64(r.Finished.Unix()), Member: r.Handle})
	}
	return nil
}

// Begin implements runs.Records.
func (rr *Records) Begin(ctx context.Context, rec runs.Record, closed bool) (got runs.Record, replay bool, err error) {
	rr.sweep(ctx)
	call := rec.Tenant + "\x00" + rec.CallKey
	err = rr.step(ctx, "run records", func(tx *redis.Tx) error {
		got, replay = runs.Record{}, false // a retry starts afresh
		if rec.CallKey != "" {
			h, err := tx.HGet(ctx, rr.callKey(), call).Result()
			if err == nil {
				got, err = rr.read(ctx, tx, h)
				if err == nil {
					replay = true
					return nil
				}
				if !errors.Is(err, errNoRecord) {
					return err
				}
			} else if !errors.Is(err, redis.Nil) {
				return err
			}
		}
		if closed {
			got, replay = runs.Record{}, false
			return nil
		}
		rec.State = runs.StatePending
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if err := rr.write(ctx, p, rec); err != nil {
				return err
			}
			if rec.CallKey != "" {
				p.HSet(ctx, rr.callKey(), call, rec.Handle)
			}
			return nil
		})
		got, replay = rec, false
		return err
	}, rr.callKey(), rr.recKey())
	return got, replay, err
}

// Get implements runs.Records.
func (rr *Records) Get(ctx context.Context, handle, tenant string) (runs.Record, bool, error) {
	s, err := rr.s.c.HGet(ctx, rr.recKey(), handle).Result()
	if errors.Is(err, redis.Nil) {
		return runs.Record{}, false, nil
	}
	if err != nil {
		return runs.Record{}, false, unavailable("run records", err)
	}
	r, err := decode(s)
	if err != nil || r.Tenant != tenant {
		return runs.Record{}, false, err
	}
	return r, true, nil
}

// update applies f to handle's record in one transaction.
func (rr *Records) update(ctx context.Context, handle string, f func(*runs.Record)) (runs.Record, error) {
	var out runs.Record
	err := rr.step(ctx, "run records", func(tx *redis.Tx) error {
		out = runs.Record{} // a retry starts afresh: a record gone meanwhile returns none
		r, err := rr.read(ctx, tx, handle)
		if err != nil {
			return err
		}
		f(&r)
		out = r
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return rr.write(ctx, p, r) })
		return err
	}, rr.recKey())
	return out, err
}

// Sent implements runs.Records.
func (rr *Records) Sent(ctx context.Context, handle string, at time.Time) error {
	var orphaned bool
	_, err := rr.update(ctx, handle, func(r *runs.Record) {
		if orphaned = r.State != runs.StatePending && r.Handle != ""; !orphaned {
			r.LastSent = at
		}
	})
	if err == nil && orphaned {
		return runs.ErrOrphaned
	}
	return err
}

// Renew implements runs.Records.
func (rr *Records) Renew(ctx context.Context, handle string, until time.Time) error {
	_, err := rr.update(ctx, handle, func(r *runs.Record) {
		if r.State == runs.StatePending {
			r.AliveUntil = until
		}
	})
	return err
}

// Finish implements runs.Records.
func (rr *Records) Finish(ctx context.Context, handle string, a runs.Answer) (runs.Record, string, error) {
	var out runs.Record
	var previous string
	err := rr.step(ctx, "run records", func(tx *redis.Tx) error {
		out, previous = runs.Record{}, "" // a retry starts afresh
		r, err := rr.read(ctx, tx, handle)
		if err != nil {
			return err
		}
		previous = r.JobID
		switch {
		case a.JobID != "":
			r.State, r.JobID = runs.StateStarted, a.JobID
		case a.Unknown:
			r.Err = a.Err
			if r.State != runs.StateStarted { // the job list may have settled it already
				r.State, r.Watched = runs.StateUnknown, true
			}
		default:
			r.State, r.Err, r.JobID = runs.StateRefused, a.Err, ""
		}
		r.Finished = a.At
		// A job the list had suggested goes back to another record that
		// holds it, if any.
		var heir string
		if previous != "" && r.JobID != previous {
			if heir, err = rr.holder(ctx, tx, previous, handle); err != nil {
				return err
			}
		}
		out = r
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if previous != "" && r.JobID != previous {
				if heir != "" {
					p.HSet(ctx, rr.claimKey(), previous, heir)
				} else {
					p.HDel(ctx, rr.claimKey(), previous)
				}
			}
			if r.JobID != "" {
				p.HSet(ctx, rr.claimKey(), r.JobID, handle)
			}
			return rr.write(ctx, p, r)
		})
		return err
	}, rr.recKey(), rr.claimKey())
	return out, previous, err
}

// holder returns another record than except whose job is jobID, or "".
func (rr *Records) holder(ctx context.Context, tx *redis.Tx, jobID, except string) (string, error) {
	all, err := tx.HGetAll(ctx, rr.recKey()).Result()
	if err != nil {
		return "", err
	}
	for h, s := range all {
		if h == except {
			continue
		}
		if r, err := decode(s); err == nil && r.JobID == jobID {
			return h, nil
		}
	}
	return "", nil
}

// unclaimed drops the jobs claimed by a record other than handle.
func (rr *Records) unclaimed(ctx context.Context, c redis.Cmdable, handle string, rows []runs.Job) ([]runs.Job, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	ids := make([]string, len(rows))
	for i, j := range rows {
		ids[i] = j.ID
	}
	owners, err := c.HMGet(ctx, rr.claimKey(), ids...).Result()
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

// competitors reads the records of kind that may compete (pending or
// unknown).
func (rr *Records) competitors(ctx context.Context, tx *redis.Tx, kind string) ([]runs.Record, error) {
	handles, err := tx.SMembers(ctx, rr.activeKey(kind)).Result()
	if err != nil || len(handles) == 0 {
		return nil, err
	}
	vals, err := tx.HMGet(ctx, rr.recKey(), handles...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]runs.Record, 0, len(vals))
	for _, v := range vals {
		if s, ok := v.(string); ok {
			if r, err := decode(s); err == nil {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Settle implements runs.Records.
func (rr *Records) Settle(ctx context.Context, handle string, lk runs.Look, rules runs.Rules) (runs.Settled, error) {
	var out runs.Settled
	var kind string
	if r, ok, _ := rr.getAny(ctx, handle); ok {
		kind = r.Kind
	}
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
		others, err := rr.competitors(ctx, tx, r.Kind)
		if err != nil {
			return err
		}
		previous := r.Look
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
			if claim != "" {
				p.HSet(ctx, rr.claimKey(), claim, handle)
			}
			return rr.write(ctx, p, r)
		})
		return err
	}, rr.recKey(), rr.claimKey(), rr.activeKey(kind))
	return out, err
}

// ConfirmPending implements runs.Records.
func (rr *Records) ConfirmPending(ctx context.Context, handle string, lk runs.Look, rules runs.Rules) (runs.Record, *runs.Job, error) {
	var out runs.Record
	var job *runs.Job
	var kind string
	if r, ok, _ := rr.getAny(ctx, handle); ok {
		kind = r.Kind
	}
	err := rr.step(ctx, "run records", func(tx *redis.Tx) error {
		out = runs.Record{} // a retry starts afresh; job too, below
		job = nil
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
		others, err := rr.competitors(ctx, tx, r.Kind)
		if err != nil {
			return err
		}
		if !runs.Confirmable(r, look, rules, others) {
			return nil
		}
		j := look.Candidates[0]
		r.State, r.JobID = runs.StateStarted, j.ID
		out, job = r, &j
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, rr.claimKey(), j.ID, handle)
			return rr.write(ctx, p, r)
		})
		return err
	}, rr.recKey(), rr.claimKey(), rr.activeKey(kind))
	return out, job, err
}

// getAny reads handle's record whatever its tenant (to find its kind).
func (rr *Records) getAny(ctx context.Context, handle string) (runs.Record, bool, error) {
	s, err := rr.s.c.HGet(ctx, rr.recKey(), handle).Result()
	if err != nil {
		return runs.Record{}, false, err
	}
	r, err := decode(s)
	return r, err == nil, err
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

// sweep forgets, at most once a minute per replica and in its own
// transactions, the records whose start answered more than
// runs.KeepRecords ago, with their replay entry and claim.
func (rr *Records) sweep(ctx context.Context) {
	now := time.Now()
	last := rr.lastSweep.Load()
	if now.UnixNano()-last < int64(time.Minute) || !rr.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	cutoff := float64(now.Add(-runs.KeepRecords).Unix())
	old, err := rr.s.c.ZRangeByScore(ctx, rr.finishedKey(), &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprintf("%.0f", cutoff), Count: 100}).Result()
	if err != nil || len(old) == 0 {
		return
	}
	for _, h := range old {
		_ = rr.step(ctx, "run records", func(tx *redis.Tx) error {
			r, err := rr.read(ctx, tx, h)
			if err != nil {
				_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.ZRem(ctx, rr.finishedKey(), h); return nil })
				return err
			}
			owner, _ := tx.HGet(ctx, rr.claimKey(), r.JobID).Result()
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HDel(ctx, rr.recKey(), h)
				p.ZRem(ctx, rr.finishedKey(), h)
				p.SRem(ctx, rr.activeKey(r.Kind), h)
				if r.CallKey != "" {
					p.HDel(ctx, rr.callKey(), r.Tenant+"\x00"+r.CallKey)
				}
				if r.JobID != "" && owner == h {
					p.HDel(ctx, rr.claimKey(), r.JobID)
				}
				return nil
			})
			return err
		}, rr.recKey(), rr.claimKey(), rr.callKey(), rr.finishedKey())
	}
}
