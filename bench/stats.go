package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// sample is a set of latencies.
type sample []time.Duration

// quantile returns the q-quantile (0 ≤ q ≤ 1) by the nearest-rank method:
// the smallest value such that at least q of the sample is at or below it.
func (s sample) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	rank := int(math.Ceil(q * float64(len(c))))
	rank = min(max(rank, 1), len(c))
	return c[rank-1]
}

func (s sample) median() time.Duration { return s.quantile(0.5) }

// ms formats a duration in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.3f ms", v)
	}
}

// secs formats a duration in seconds.
func secs(d time.Duration) string {
	v := d.Seconds()
	switch {
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f s", v)
	default:
		return fmt.Sprintf("%.3f s", v)
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}
