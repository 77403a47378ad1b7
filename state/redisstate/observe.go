package redisstate

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Observe reports every command c sends (and every pipeline or
// transaction, as one operation named by its commands) to observe: the
// command's name, never its keys or arguments, how long it took, and its
// error. A missing key (redis.Nil) and a transaction that another replica
// made retry are answers, not errors.
func Observe(c redis.UniversalClient, observe func(op string, d time.Duration, err error)) {
	c.AddHook(observeHook{observe})
}

type observeHook struct {
	observe func(op string, d time.Duration, err error)
}

func (h observeHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h observeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		began := time.Now()
		err := next(ctx, cmd)
		h.observe(strings.ToLower(cmd.Name()), time.Since(began), failure(err))
		return err
	}
}

func (h observeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		began := time.Now()
		err := next(ctx, cmds)
		op := "pipeline"
		for _, c := range cmds {
			if name := strings.ToLower(c.Name()); name == "multi" {
				op = "transaction"
				break
			}
		}
		h.observe(op, time.Since(began), failure(err))
		return err
	}
}

func failure(err error) error {
	if errors.Is(err, redis.Nil) || errors.Is(err, redis.TxFailedErr) {
		return nil
	}
	return err
}
