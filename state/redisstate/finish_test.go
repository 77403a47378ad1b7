package redisstate_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state/redisstate"
)

// Finish on the process that began a record takes one script; anywhere
// else, or after another change, the transaction. Both must leave the
// same record, claims, holders, active set and expiries.
func TestFinishOneScriptMatchesTheTransaction(t *testing.T) {
	_, srv := replicas(t, 1)
	c := srv.Client(t)
	ctx := context.Background()
	answers := map[string]runs.Answer{
		"started": {At: t0.Add(2 * time.Second), JobID: "job-1"},
		"refused": {At: t0.Add(2 * time.Second), Err: errors.New("402: not enough credits")},
		"unknown": {At: t0.Add(2 * time.Second), Unknown: true, Err: errors.New("the connection broke")},
	}
	for name, a := range answers {
		t.Run(name, func(t *testing.T) {
			// The same steps under two prefixes: finished by the replica
			// that began it (one script), and by another one.
			var recs [2]runs.Record
			var keys [2]map[string]string
			for i, prefix := range []string{"fast-" + name + ":", "slow-" + name + ":"} {
				began := redisstate.New(c, prefix).Records()
				finisher := began
				if i == 1 {
					finisher = redisstate.New(c, prefix).Records() // another replica
				}
				begin(t, began, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, CallKey: "call-1", Submitted: t0,
					AliveUntil: t0.Add(time.Hour)})
				if err := began.Sent(ctx, "h1", t0.Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				watches := watchCount(t, c)
				got, previous, err := finisher.Finish(ctx, "h1", a)
				if err != nil || previous != "" {
					t.Fatalf("Finish: %v, previous %q", err, previous)
				}
				if tx := watchCount(t, c) > watches; tx != (i == 1) {
					t.Errorf("finishing on replica %d took the transaction: %v", i, tx)
				}
				read, ok, err := finisher.Get(ctx, "h1", "a")
				if err != nil || !ok {
					t.Fatalf("Get: %v %v", ok, err)
				}
				if !reflect.DeepEqual(comparable(got), comparable(read)) {
					t.Errorf("Finish returned %+v, recorded %+v", got, read)
				}
				recs[i], keys[i] = got, keysOf(t, c, prefix)
			}
			if !reflect.DeepEqual(comparable(recs[1]), comparable(recs[0])) {
				t.Errorf("the record:\ntransaction %+v\nscript      %+v", recs[1], recs[0])
			}
			if !reflect.DeepEqual(keys[1], keys[0]) {
				t.Errorf("the keys:\ntransaction %v\nscript      %v", keys[1], keys[0])
			}
			if len(keys[0]) < 2 {
				t.Errorf("keys %v: want the record and its call key at least", keys[0])
			}
		})
	}
}

// A record another replica changed after this one began it (here: found
// orphaned) is finished by the transaction, on what it now says.
func TestFinishAfterAnotherReplicaChangedTheRecord(t *testing.T) {
	_, srv := replicas(t, 1)
	c := srv.Client(t)
	ctx := context.Background()
	mine, other := redisstate.New(c, "p:").Records(), redisstate.New(c, "p:").Records()
	begin(t, mine, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: t0, AliveUntil: t0})
	if rec, err := other.Orphan(ctx, "h1", time.Second); err != nil || rec.State != runs.StateUnknown {
		t.Fatalf("Orphan: %+v %v", rec, err)
	}
	got, _, err := mine.Finish(ctx, "h1", runs.Answer{At: time.Now(), JobID: "job-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != runs.StateStarted || got.JobID != "job-1" || got.Err == nil {
		t.Errorf("finished %+v: want started with job-1, the orphaning kept (its error)", got)
	}
	if owner, _ := c.Get(ctx, "p:runs:{records}:claim:job-1").Result(); owner != "h1" {
		t.Errorf("job-1's claim: %q", owner)
	}
}

// watchCount is how many WATCH commands the server has run: a Finish by
// transaction sends some, the script none.
func watchCount(t *testing.T, c *redis.Client) int { return commandCount(t, c, "watch") }

// commandCount is how many times the server has run the command name.
func commandCount(t *testing.T, c *redis.Client, name string) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, l := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(l, "cmdstat_"+name+":calls="); ok {
			_, _ = fmt.Sscanf(rest, "%d", &n)
		}
	}
	return n
}

// comparable is r with its error as text (a store keeps only that).
func comparable(r runs.Record) any {
	msg := ""
	if r.Err != nil {
		msg = r.Err.Error()
	}
	r.Err = nil
	for _, at := range []*time.Time{&r.Submitted, &r.LastSent, &r.Finished, &r.AliveUntil} {
		*at = at.Round(0).UTC() // no monotonic reading, one location
	}
	return struct {
		runs.Record
		Err string
	}{r, msg}
}

// keysOf describes every key under prefix: its contents (a hash without
// its body, which the records compare decoded) and when it expires, to the
// second (the active set's expiry counts from the moment of writing).
func keysOf(t *testing.T, c *redis.Client, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	names, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range names {
		var v string
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			v = c.Get(ctx, k).Val()
		case "set":
			m := c.SMembers(ctx, k).Val()
			slices.Sort(m)
			v = strings.Join(m, ",")
		case "hash":
			h := c.HGetAll(ctx, k).Val()
			delete(h, "body")
			v = fmt.Sprint(h)
		default:
			v = typ
		}
		at := c.PExpireTime(ctx, k).Val()
		out[strings.TrimPrefix(k, prefix)] = fmt.Sprintf("%s (expires %d)", v, at.Milliseconds()/1000)
	}
	return out
}

// A wait slot released early and again when its call returns goes back
// once: the second release sends nothing.
func TestSlotReleasedTwiceSendsOneCommand(t *testing.T) {
	_, srv := replicas(t, 1)
	c := srv.Client(t)
	release, ok, err := redisstate.New(c, "p:").Slots().Acquire(context.Background(), "k", 1, time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	before := commandCount(t, c, "zrem")
	release()
	release()
	if n := commandCount(t, c, "zrem") - before; n != 1 {
		t.Errorf("two releases sent %d ZREM, want 1", n)
	}
}
