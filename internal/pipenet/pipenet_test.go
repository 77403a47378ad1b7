package pipenet_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bpmcp/bpmcp/internal/pipenet"
)

// net/http serves and calls over the listener inside a bubble: a handler's
// ten-second sleep passes on the fake clock, and once both sides are closed
// no goroutine is left (synctest.Test would fail otherwise).
func TestHTTPInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := pipenet.Listen()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(10 * time.Second)
			_, _ = io.WriteString(w, "slept")
		})}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		tr := &http.Transport{DialContext: ln.Dial}
		defer tr.CloseIdleConnections()

		start := time.Now()
		for range 2 { // the second request reuses the idle connection
			res, err := (&http.Client{Transport: tr}).Get("http://pipe.invalid/")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if err != nil || string(body) != "slept" {
				t.Fatalf("body %q, err %v", body, err)
			}
		}
		if took := time.Since(start); took != 20*time.Second {
			t.Errorf("two requests took %v on the fake clock, want 20s", took)
		}
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
}

// A closed listener refuses connections, and a dial gives up with its
// context when no one accepts.
func TestClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := pipenet.Listen()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := ln.Dial(ctx, "tcp", "x:80"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Dial with no Accept: %v", err)
		}
		_ = ln.Close()
		_ = ln.Close()
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
		if _, err := ln.Dial(t.Context(), "tcp", "x:80"); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Dial after Close: %v", err)
		}
	})
}
