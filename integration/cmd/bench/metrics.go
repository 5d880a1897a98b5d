package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// freePort returns a loopback port nothing listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// callStats are the sums and counts of containerd's timers per series
// (e.g. `runsc_call kind="cli",verb="create"`).
type callStats map[string]struct {
	count float64
	sum   float64 // seconds
}

// scrape reads the containerd_shimless_* timer sums and counts.
func scrape(url string) (callStats, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := callStats{}
	for s := bufio.NewScanner(resp.Body); s.Scan(); {
		line := s.Text()
		if !strings.HasPrefix(line, "containerd_shimless_") {
			continue
		}
		name, rest, ok := strings.Cut(line, "{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		name = strings.TrimPrefix(name, "containerd_shimless_")
		var key string
		switch {
		case strings.HasSuffix(name, "_seconds_sum"):
			key = strings.TrimSuffix(name, "_seconds_sum") + " " + labels
			e := out[key]
			e.sum = v
			out[key] = e
		case strings.HasSuffix(name, "_seconds_count"):
			key = strings.TrimSuffix(name, "_seconds_count") + " " + labels
			e := out[key]
			e.count = v
			out[key] = e
		}
	}
	return out, nil
}

// breakdown prints what happened between two scrapes, per pod (n pods).
func breakdown(before, after callStats, n int) string {
	var keys []string
	for k := range after {
		// containerManager.Wait lasts a container's life: not a cost.
		if strings.Contains(k, `verb="containerManager.Wait"`) {
			continue
		}
		if after[k].count-before[k].count > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "| series | calls per pod | mean ms per call | ms per pod |\n| --- | --- | --- | --- |\n")
	for _, k := range keys {
		dc := after[k].count - before[k].count
		ds := after[k].sum - before[k].sum
		fmt.Fprintf(&b, "| `%s` | %.1f | %.1f | %.1f |\n", k, dc/float64(n), ds/dc*1000, ds/float64(n)*1000)
	}
	return b.String()
}
