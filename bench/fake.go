package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
)

// benchKey is the API key every part uses against its fake.
const benchKey = "bp_bench_key"

// upstream is an in-process fake BetterPrompt API on a loopback port. The
// fake behind it can be swapped between scenarios (so that each starts with
// an empty request log) while the server under test keeps its base URL.
type upstream struct {
	fake    atomic.Pointer[fakeapi.Server]
	srv     *http.Server
	baseURL string // including /v1
	conns   atomic.Int64
}

// newFake returns a fake with the catalogue, a well-funded bench key and
// no rate limit, as parts 2 and 3 need.
func newFake(cat []fakeapi.Prompt) *fakeapi.Server {
	return fakeapi.New(fakeapi.Options{
		Catalogue: cat,
		Keys:      map[string]fakeapi.Key{benchKey: {Credits: 1 << 40}},
		RateLimit: -1,
	})
}

func startUpstream(f *fakeapi.Server) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{baseURL: "http://" + ln.Addr().String() + "/v1"}
	u.fake.Store(f)
	u.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { u.fake.Load().ServeHTTP(w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				u.conns.Add(1)
			}
		},
	}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

// swap installs a fresh fake and returns the previous one.
func (u *upstream) swap(f *fakeapi.Server) *fakeapi.Server {
	old := u.fake.Swap(f)
	old.Close()
	return old
}

func (u *upstream) close() {
	u.fake.Load().Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = u.srv.Shutdown(ctx)
}

func loadCatalogue(root string) ([]fakeapi.Prompt, error) {
	cat, err := fakeapi.LoadCatalogueDir(filepath.Join(root, "testdata", "catalogue"))
	if err != nil {
		return nil, fmt.Errorf("load the catalogue: %w", err)
	}
	return cat, nil
}
