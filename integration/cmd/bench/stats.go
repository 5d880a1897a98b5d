package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// samples are durations of one figure.
type samples []time.Duration

// pct is the nearest-rank percentile (p in 0..100); 0 when empty.
func (s samples) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append(samples(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	i := int(math.Ceil(p/100*float64(len(c)))) - 1
	if i < 0 {
		i = 0
	}
	return c[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// tri formats p50/p95/p99 in ms.
func (s samples) tri() string {
	if len(s) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f", ms(s.pct(50)), ms(s.pct(95)), ms(s.pct(99)))
}

func ratio(a, b time.Duration) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return c[len(c)/2]
}
