package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func version(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return "?"
	}
	line := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	return strings.TrimSpace(line)
}

func renderReport(ts *targets, o options, began time.Time, serial map[string]*serialResult, scaled map[string][]*scaleResult, breakdowns []string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	repoBin := ""
	if ts.floor != nil {
		repoBin = filepath.Dir(ts.floor.runsc)
	} else if ts.shim != nil {
		repoBin = ts.shim.BinDir
	} else if ts.stock != nil {
		repoBin = ts.stock.BinDir
	}
	w("## Bench run %s (%s)\n\n", began.Format("2006-01-02 15:04 UTC"), time.Since(began).Round(time.Second))
	w("Machine: %s.\n\n", machine())
	w("Versions: `%s`; stock `%s`; `%s`; `%s`.\n\n",
		version(filepath.Join(repoBin, "containerd"), "--version"),
		version(filepath.Join(repoBin, "stock", "containerd"), "--version"),
		version(filepath.Join(repoBin, "runsc"), "--version"),
		version(filepath.Join(repoBin, "runc"), "--version"))
	w("Serial: %d pods per target (after one warm-up), interleaved; %d ExecSync `true` per pod; per-pod processes/PSS from the first 3 pods. Times in ms, p50 / p95 / p99.\n\n", o.n, o.execs)
	w("| target | RunPodSandbox | CreateContainer | StartContainer | first log line | pod start (server: 3 CRI calls) | pod start (to first log line) | teardown (Stop+Remove) | ExecSync `true` | processes / pod (beyond sandbox's) | PSS / pod MB |\n")
	w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, k := range ts.keys {
		r := serial[k]
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0f (%.0f) | %.1f |\n", ts.byKey[k].name(),
			r.run.tri(), r.create.tri(), r.start.tri(), r.firstLog.tri(), r.server.tri(), r.total.tri(), r.teardown.tri(), r.exec.tri(),
			median(r.procs), median(r.extra), median(r.pssKB)/1024)
	}
	w("\nPSS per pod by process kind (the first 3 pods of each runsc target; Pss_Anon+Pss_Shmem and Pss_File from smaps_rollup), MB:\n\n| target | kind | processes / pod | PSS | anon+shmem | file |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, k := range ts.keys {
		r := serial[k]
		if r.pssPods == 0 || k == "runc" {
			continue
		}
		kinds := make([]string, 0, len(r.byKind))
		for kind := range r.byKind {
			kinds = append(kinds, kind)
		}
		sort.Strings(kinds)
		n := float64(r.pssPods)
		for _, kind := range kinds {
			u := r.byKind[kind]
			w("| %s | %s | %.1f | %.2f | %.2f | %.2f |\n", ts.byKey[k].name(), kind, float64(u.procs)/n, float64(u.pssKB)/n/1024, float64(u.anonKB)/n/1024, float64(u.fileKB)/n/1024)
		}
	}
	for _, k := range ts.keys {
		if c := serial[k].extraComms; len(c) > 0 {
			var names []string
			for n := range c {
				names = append(names, "`"+n+"`")
			}
			sort.Strings(names)
			w("\nProcesses beyond the sandbox's own, %s: %s.\n", ts.byKey[k].name(), strings.Join(names, ", "))
		}
	}
	w("\nRatios of p50s (shimless `runsc` over the other):\n\n| against | pod start (server) | pod start (first log line) | teardown | ExecSync |\n| --- | --- | --- | --- | --- |\n")
	ours, haveOurs := serial["runsc"]
	if haveOurs {
		for _, k := range ts.keys {
			if k == "runsc" {
				continue
			}
			r := serial[k]
			w("| %s | %s | %s | %s | %s |\n", ts.byKey[k].name(),
				ratio(ours.server.pct(50), r.server.pct(50)), ratio(ours.total.pct(50), r.total.pct(50)),
				ratio(ours.teardown.pct(50), r.teardown.pct(50)), ratio(ours.exec.pct(50), r.exec.pct(50)))
		}
	}
	if len(o.scale) > 0 {
		w("\nConcurrent pod starts (each: RunPodSandbox + CreateContainer + StartContainer + first log line), then concurrent teardown. Per-pod cost measured with all pods idle.\n\n")
		w("| target | pods | start wall s | throughput pods/s | start p50 / p95 / p99 ms | teardown wall s | teardown p50 / p95 / p99 ms | processes / pod (beyond) | PSS / pod MB | containerd RSS growth / pod MB | failures |\n")
		w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, k := range ts.keys {
			// Growth from 1 pod: the serial figures.
			r1 := serial[k]
			w("| %s | 1 (serial) | %.2f | %.2f | %s | %.2f | %s | %.0f (%.0f) | %.1f | - | %d |\n", ts.byKey[k].name(),
				r1.total.pct(50).Seconds(), 1/r1.total.pct(50).Seconds(), r1.total.tri(),
				r1.teardown.pct(50).Seconds(), r1.teardown.tri(), median(r1.procs), median(r1.extra), median(r1.pssKB)/1024, len(r1.errs))
			for _, r := range scaled[k] {
				rss := "-"
				if ts.byKey[k].containerdPid() != 0 {
					rss = fmt.Sprintf("%.2f", r.rssKB/1024)
				}
				w("| %s | %d | %.2f | %.2f | %s | %.2f | %s | %.1f (%.1f) | %.1f | %s | %d |\n", ts.byKey[k].name(), r.n,
					r.startWall.Seconds(), float64(r.n-r.failed)/r.startWall.Seconds(), r.start.tri(),
					r.teardownWall.Seconds(), r.teardown.tri(), r.procs, r.extra, r.pssKB/1024, rss, len(r.errs))
			}
		}
		if o.restart {
			w("\ncontainerd restart (kill -9, start) with %d running pods: time from the new process's start until CRI answers, and until every pod is READY and every container RUNNING.\n\n| target | CRI ready s | all READY + RUNNING s | error |\n| --- | --- | --- | --- |\n", o.scale[len(o.scale)-1])
			for _, k := range ts.keys {
				rs := scaled[k]
				if len(rs) == 0 || rs[len(rs)-1].restartReady == 0 {
					continue
				}
				r := rs[len(rs)-1]
				w("| %s | %.2f | %.2f | %s |\n", ts.byKey[k].name(), r.restartCRI.Seconds(), r.restartReady.Seconds(), r.restartErr)
			}
		}
	}
	if len(breakdowns) > 0 {
		w("\n### runsc invocations (containerd's `containerd_shimless_*` timers)\n\n")
		for _, s := range breakdowns {
			w("%s\n", s)
		}
	}
	w("%s", goals(ts, o, serial, scaled))
	var errs []string
	for _, k := range ts.keys {
		for _, e := range serial[k].errs {
			errs = append(errs, ts.byKey[k].name()+": "+e)
		}
		for _, r := range scaled[k] {
			for _, e := range r.errs {
				errs = append(errs, fmt.Sprintf("%s (%d): %s", ts.byKey[k].name(), r.n, e))
			}
		}
	}
	if len(errs) > 0 {
		w("\nErrors (%d):\n\n", len(errs))
		for i, e := range errs {
			if i == 20 {
				w("- ... %d more\n", len(errs)-20)
				break
			}
			w("- %s\n", e)
		}
	}
	return b.String()
}

// goals reports each issue-12 goal for shimless's `runsc` handler.
func goals(ts *targets, o options, serial map[string]*serialResult, scaled map[string][]*scaleResult) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	ours, shim, floor := serial["runsc"], serial["stock"], serial["floor"]
	if ours == nil {
		return ""
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	w("\n### Goals (shimless `runsc` handler)\n\n| goal | measured | verdict |\n| --- | --- | --- |\n")
	rat := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
	if shim != nil && len(shim.server) > 0 {
		r := rat(ours.server.pct(50), shim.server.pct(50))
		w("| pod start ≤ 0.6× gVisor shim (p50, server side) | %.2f× (%.0f vs %.0f ms; to first log line %.2f×) | %s |\n", r,
			ms(ours.server.pct(50)), ms(shim.server.pct(50)), rat(ours.total.pct(50), shim.total.pct(50)), verdict(r <= 0.6))
	}
	if floor != nil && len(floor.server) > 0 {
		r := rat(ours.server.pct(50), floor.server.pct(50))
		w("| pod start ≤ 1.0× raw runsc CLI floor (p50, server side) | %.2f× (%.0f vs %.0f ms; to first log line %.2f×) | %s |\n", r,
			ms(ours.server.pct(50)), ms(floor.server.pct(50)), rat(ours.total.pct(50), floor.total.pct(50)), verdict(r <= 1.0))
	}
	if shim != nil && len(shim.teardown) > 0 {
		r := rat(ours.teardown.pct(50), shim.teardown.pct(50))
		w("| teardown ≤ 0.35× gVisor shim (p50) | %.2f× (%.0f vs %.0f ms) | %s |\n", r, ms(ours.teardown.pct(50)), ms(shim.teardown.pct(50)), verdict(r <= 0.35))
	}
	w("| ExecSync ≤ 40 ms (p50; p99) | %.0f ms; %.0f ms | %s |\n", ms(ours.exec.pct(50)), ms(ours.exec.pct(99)), verdict(ms(ours.exec.pct(50)) <= 40))
	w("| 0 processes per idle pod beyond the sandbox's own | %.0f (of %.0f) | %s |\n", median(ours.extra), median(ours.procs), verdict(median(ours.extra) == 0))
	if floor != nil {
		d := (median(ours.pssKB) - median(floor.pssKB)) / 1024
		w("| PSS per idle pod ≤ floor + 0.5 MB (1 pod) | %.1f MB vs floor %.1f MB (%+.1f MB) | %s |\n", median(ours.pssKB)/1024, median(floor.pssKB)/1024, d, verdict(d <= 0.5))
	}
	last := func(k string) *scaleResult {
		if rs := scaled[k]; len(rs) > 0 {
			return rs[len(rs)-1]
		}
		return nil
	}
	if r := last("runsc"); r != nil {
		if f := last("floor"); f != nil {
			d := (r.pssKB - f.pssKB) / 1024
			w("| PSS per idle pod ≤ floor + 0.5 MB (%d pods) | %.1f MB vs floor %.1f MB (%+.1f MB) | %s |\n", r.n, r.pssKB/1024, f.pssKB/1024, d, verdict(d <= 0.5))
		}
		w("| containerd RSS growth ≤ 0.5 MB per pod (%d pods) | %.2f MB | %s |\n", r.n, r.rssKB/1024, verdict(r.rssKB/1024 <= 0.5))
		if s := last("stock"); s != nil && s.n == r.n {
			ours := float64(r.n-r.failed) / r.startWall.Seconds()
			theirs := float64(s.n-s.failed) / s.startWall.Seconds()
			w("| %d concurrent starts: throughput ≥ 1.5× shim's | %.2f× (%.2f vs %.2f pods/s; p99 %.1f vs %.1f s) | %s |\n", r.n, ours/theirs, ours, theirs,
				r.start.pct(99).Seconds(), s.start.pct(99).Seconds(), verdict(ours/theirs >= 1.5))
		}
		if r.restartReady > 0 {
			w("| restart with %d pods: all READY ≤ 2 s | %.2f s (CRI up after %.2f s)%s | %s |\n", r.n, r.restartReady.Seconds(), r.restartCRI.Seconds(),
				map[bool]string{true: "; " + r.restartErr, false: ""}[r.restartErr != ""], verdict(r.restartErr == "" && r.restartReady <= 2*time.Second))
		}
	}
	// Teardown at 20 concurrent.
	for i, c := range o.scale {
		if c != 20 {
			continue
		}
		if rs, ss := scaled["runsc"], scaled["stock"]; len(rs) > i && len(ss) > i {
			w("| (reported) teardown p99 at 20 concurrent | %.2f s vs shim %.2f s (%.2f×) | - |\n", rs[i].teardown.pct(99).Seconds(), ss[i].teardown.pct(99).Seconds(),
				rat(rs[i].teardown.pct(99), ss[i].teardown.pct(99)))
		}
	}
	return b.String()
}
