package redisstate_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state/redisstate"
)

// clusterNode starts a redis-server in cluster mode that serves every slot
// alone: it answers CROSSSLOT, as any Redis Cluster does, to a command
// whose keys are not all in one slot.
func clusterNode(t *testing.T) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("BPMCP_CI") != "" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	for i := 0; c.Ping(ctx).Err() != nil; i++ {
		if i == 100 {
			t.Fatal("the cluster node did not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		info, _ := c.ClusterInfo(ctx).Result()
		if strings.Contains(info, "cluster_state:ok") {
			break
		}
		if i == 100 {
			t.Fatalf("the cluster is not ok: %s", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// Every step of the records runs on Redis Cluster: all the keys a script
// or transaction names share one slot. Begin without a call key named ""
// as a key (slot 0), which a cluster refuses with CROSSSLOT.
func TestRecordsOnClusterSlots(t *testing.T) {
	c := clusterNode(t)
	r := redisstate.New(c, "").Records()
	ctx := context.Background()
	now := time.Now()
	if _, _, err := r.Begin(ctx, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: now, LastSent: now}, false); err != nil {
		t.Fatalf("Begin without a call key: %v", err)
	}
	if _, _, err := r.Begin(ctx, runs.Record{Handle: "h2", Tenant: "a", Kind: kindA, CallKey: "c", Submitted: now, LastSent: now}, false); err != nil {
		t.Fatalf("Begin with a call key: %v", err)
	}
	if _, replay, err := r.Begin(ctx, runs.Record{Handle: "h3", Tenant: "a", Kind: kindA, CallKey: "c", Submitted: now}, false); err != nil || !replay {
		t.Fatalf("a replay: %v %v", replay, err)
	}
	if err := r.Sent(ctx, "h1", now); err != nil {
		t.Fatal(err)
	}
	if err := r.Renew(ctx, "h1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ConfirmPending(ctx, "h1", runs.Look{Candidates: []runs.Job{{ID: "j1", Kind: kindA, CreatedAt: now}}}, rules); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Finish(ctx, "h1", runs.Answer{At: now, JobID: "j2"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Finish(ctx, "h2", runs.Answer{At: now, Unknown: true, Err: errors.New("reset")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Settle(ctx, "h2", runs.Look{At: now, Candidates: []runs.Job{{ID: "j1", Kind: kindA, CreatedAt: now}}}, rules); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Abandon(ctx, "h2"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Unclaimed(ctx, []runs.Job{{ID: "j1"}, {ID: "j2"}}, ""); err != nil {
		t.Fatal(err)
	}
	b := redisstate.New(c, "").Budgets()
	if _, _, err := b.Reserve(ctx, "k", "id", 5, 100, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := b.Settle(ctx, "k", "id", 3); err != nil {
		t.Fatal(err)
	}
}

// A record's replay entry, its claim and its job's holders last as long
// as the record: a change that keeps the record longer (an answer, a
// later step on a pending record) keeps them too. Before, only the record
// was kept longer: its call key expired with its first expiry, so a replay
// in between started a second run, and its claim expired while it still
// held the job, so another record could confirm it.
func TestRecordsKeysLiveAsLongAsTheRecord(t *testing.T) {
	_, srv := replicas(t, 1)
	c := srv.Client(t)
	r := redisstate.New(c, "t17:").Records()
	ctx := context.Background()
	k := func(name string) string { return "t17:runs:{records}:" + name }
	at := func(key string) time.Time {
		t.Helper()
		ms, err := c.Do(ctx, "PEXPIRETIME", key).Int64()
		if err != nil || ms < 0 {
			t.Fatalf("PEXPIRETIME %s = %d, %v", key, ms, err)
		}
		return time.UnixMilli(ms)
	}
	now := time.Now()
	begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, CallKey: "c1", Submitted: now, LastSent: now})
	// The start answers a minute after it was sent.
	if _, _, err := r.Finish(ctx, "h1", runs.Answer{At: now.Add(time.Minute), JobID: "j1"}); err != nil {
		t.Fatal(err)
	}
	rec := at(k("rec:h1"))
	if call := at(k("call:a\x00c1")); call.Before(rec) {
		t.Errorf("the replay entry expires at %v, %v before its record", call, rec.Sub(call))
	}

	// A pending record confirmed through the list, whose sender went away:
	// every later step keeps it another runs.KeepRecords.
	begin(t, r, runs.Record{Handle: "h2", Tenant: "a", Kind: kindA, CallKey: "c2", Submitted: now, LastSent: now})
	if _, job, err := r.ConfirmPending(ctx, "h2", runs.Look{Candidates: []runs.Job{{ID: "j2", Kind: kindA, CreatedAt: now}}}, rules); err != nil || job == nil {
		t.Fatalf("not confirmed: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := r.Abandon(ctx, "h2"); err != nil {
		t.Fatal(err)
	}
	rec = at(k("rec:h2"))
	for _, key := range []string{k("call:a\x00c2"), k("claim:j2"), k("holders:j2")} {
		if got := at(key); got.Before(rec) {
			t.Errorf("%s expires %v before its record", key, rec.Sub(got))
		}
	}
}

// Charges recorded before the running totals existed (the previous
// version kept only the sorted set and the hash, with the same names)
// count after the upgrade: the totals are built from them once, so the
// budget is not overspent by what they hold, and their leaving the window
// does not take the totals below zero.
func TestBudgetsTotalsBuiltFromEarlierCharges(t *testing.T) {
	_, srv := replicas(t, 1)
	c := srv.Client(t)
	ctx := context.Background()
	nowMs := time.Now().UnixMilli()
	// As the previous version left them: 60 spent, 30 reserved, in the
	// window of an hour; one charge of 25 spent just leaving it.
	c.ZAdd(ctx, "bpmcp:v1:budget-at:{k}", redis.Z{Score: float64(nowMs - 1000), Member: "a"},
		redis.Z{Score: float64(nowMs - 1000), Member: "b"}, redis.Z{Score: float64(nowMs - time.Hour.Milliseconds() + 300), Member: "old"})
	c.HSet(ctx, "bpmcp:v1:budget-charge:{k}", "a", "60,1", "b", "30,0", "old", "25,1")
	b := redisstate.New(c, "").Budgets()
	s, err := b.Report(ctx, "k", 100, time.Hour)
	if err != nil || s.Spent != 85 || s.Reserved != 30 || s.Left != 0 {
		t.Errorf("Report = %+v, %v; want 85 spent, 30 reserved", s, err)
	}
	if _, ok, _ := b.Reserve(ctx, "k", "new", 20, 100, time.Hour); ok {
		t.Error("a reservation went past the budget the earlier charges used")
	}
	time.Sleep(400 * time.Millisecond) // "old" leaves the window
	s, err = b.Report(ctx, "k", 100, time.Hour)
	if err != nil || s.Spent != 60 || s.Reserved != 30 || s.Left != 10 {
		t.Errorf("Report once a charge left = %+v, %v; want 60 spent, 30 reserved", s, err)
	}
}

// The same when the first script after the upgrade settles an earlier
// reservation.
func TestBudgetsTotalsBuiltOnSettle(t *testing.T) {
	_, srv := replicas(t, 1)
	c := srv.Client(t)
	ctx := context.Background()
	nowMs := time.Now().UnixMilli()
	c.ZAdd(ctx, "bpmcp:v1:budget-at:{k}", redis.Z{Score: float64(nowMs), Member: "a"}, redis.Z{Score: float64(nowMs), Member: "b"})
	c.HSet(ctx, "bpmcp:v1:budget-charge:{k}", "a", "60,1", "b", "30,0")
	b := redisstate.New(c, "").Budgets()
	if err := b.Settle(ctx, "k", "b", 20); err != nil {
		t.Fatal(err)
	}
	if s, err := b.Report(ctx, "k", 100, time.Hour); err != nil || s.Spent != 80 || s.Reserved != 0 {
		t.Errorf("Report = %+v, %v; want 80 spent", s, err)
	}
}

// failFirst fails the first command named name.
type failFirst struct {
	name string
	done atomic.Bool
}

func (h *failFirst) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failFirst) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == h.name && h.done.CompareAndSwap(false, true) {
			cmd.SetErr(errors.New("i/o timeout"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (h *failFirst) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Settle watches its kind's active set whatever the read of the kind
// before the transaction gave: when that read failed, it watched the
// active set of kind "", so a competitor that began between the reading
// of the set and EXEC went unseen and the job was confirmed beside it.
func TestSettleWatchesTheActiveSetOfItsKind(t *testing.T) {
	_, srv := replicas(t, 1)
	ctx := context.Background()
	c := srv.Client(t)
	r := redisstate.New(c, "").Records()
	other := redisstate.New(srv.Client(t), "").Records()
	now := time.Now()
	begin(t, r, runs.Record{Handle: "h1", Tenant: "a", Kind: kindA, Submitted: now, LastSent: now})
	_, _, _ = r.Finish(ctx, "h1", runs.Answer{At: now.Add(time.Second), Unknown: true, Err: errors.New("reset")})
	c.AddHook(&failFirst{name: "hgetall"})
	c.AddHook(&hookFirstExec{f: func() {
		begin(t, other, runs.Record{Handle: "h2", Tenant: "b", Kind: kindA, Submitted: now, LastSent: now})
	}})
	job := runs.Job{ID: "job-x", Kind: kindA, CreatedAt: now}
	st, err := r.Settle(ctx, "h1", runs.Look{At: now.Add(2 * time.Second), Candidates: []runs.Job{job}}, rules)
	if err == nil && st.State == runs.StateStarted {
		t.Errorf("h1 was confirmed with job-x while h2, pending beside it, competes: %+v", st)
	}
}
