package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The stock gVisor shim has no timers of its own: its runsc invocations
// are counted through a wrapper that its runsc.toml names as binary_name
// (handler runsc-counted of the stock containerd, used only here). The
// wrapper logs each invocation's start and end; its own cost (a shell)
// is a millisecond or two per call.
const runscWrapper = `#!/bin/sh
echo "$(date +%%s%%N) $$ start $*" >>%s
%s "$@"
rc=$?
echo "$(date +%%s%%N) $$ end $rc" >>%s
exit $rc
`

func writeRunscWrapper(work, runsc string) (wrapper, logPath string, err error) {
	wrapper = filepath.Join(work, "runsc-counted")
	logPath = filepath.Join(work, "runsc-counted.log")
	err = os.WriteFile(wrapper, []byte(fmt.Sprintf(runscWrapper, logPath, runsc, logPath)), 0o755)
	return wrapper, logPath, err
}

var runscVerbs = map[string]bool{
	"create": true, "start": true, "state": true, "kill": true, "delete": true, "exec": true,
	"events": true, "wait": true, "ps": true, "pause": true, "resume": true, "update": true,
	"list": true, "run": true, "checkpoint": true, "restore": true, "debug": true, "usage": true,
}

// invocation is one logged runsc call.
type invocation struct {
	verb       string
	start, end int64 // ns; end 0 = still running
}

// readInvocations parses the wrapper's log from byte offset from.
func readInvocations(logPath string, from int64) ([]*invocation, int64) {
	b, _ := os.ReadFile(logPath)
	if from > int64(len(b)) {
		from = int64(len(b))
	}
	byPid := map[string]*invocation{}
	var out []*invocation
	for _, line := range strings.Split(string(b[from:]), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		ts, _ := strconv.ParseInt(f[0], 10, 64)
		switch f[2] {
		case "start":
			verb := "?"
			for _, a := range f[3:] {
				if runscVerbs[a] {
					verb = a
					break
				}
			}
			in := &invocation{verb: verb, start: ts}
			byPid[f[1]] = in
			out = append(out, in)
		case "end":
			if in := byPid[f[1]]; in != nil {
				in.end = ts
			}
		}
	}
	return out, int64(len(b))
}

// shimBreakdown runs n pods on the stock containerd's runsc-counted
// handler and tables the shim's runsc invocations per pod start, exec and
// teardown.
func shimBreakdown(ts *targets, n int) string {
	tg := &criTarget{handler: "runsc-counted", d: ts.stock}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "#### stock containerd + gVisor shim (%d pods, serial; counted through a binary_name wrapper)\n\n", n)
	var pods []*pod
	_, off0 := readInvocations(ts.countLog, 0)
	for i := 0; i < n; i++ {
		p, _, err := tg.startPod(ctx, fmt.Sprintf("k%d-%d", i, time.Now().UnixNano()%1e6))
		if p != nil {
			pods = append(pods, p)
		}
		if err != nil {
			fmt.Fprintf(&b, "pod start: %v\n", err)
		}
	}
	startCalls, off1 := readInvocations(ts.countLog, off0)
	time.Sleep(idleWindow)
	idleCalls, off1 := readInvocations(ts.countLog, off1)
	for _, p := range pods {
		_ = tg.exec(ctx, p)
	}
	execCalls, off2 := readInvocations(ts.countLog, off1)
	for _, p := range pods {
		_ = tg.teardown(ctx, p)
	}
	time.Sleep(500 * time.Millisecond)
	tearCalls, _ := readInvocations(ts.countLog, off2)
	for _, ph := range []struct {
		title string
		calls []*invocation
	}{{"Pod start (RunPodSandbox + CreateContainer + StartContainer)", startCalls}, {fmt.Sprintf("Idle (%s with the %d pods running, no CRI calls)", idleWindow, n), idleCalls}, {"ExecSync `true`", execCalls}, {"Teardown (StopPodSandbox + RemovePodSandbox)", tearCalls}} {
		fmt.Fprintf(&b, "%s:\n\n%s\n", ph.title, invocationTable(ph.calls, n))
	}
	return b.String()
}

func invocationTable(calls []*invocation, n int) string {
	type agg struct {
		count, ended int
		sum          time.Duration
	}
	byVerb := map[string]*agg{}
	for _, c := range calls {
		a := byVerb[c.verb]
		if a == nil {
			a = &agg{}
			byVerb[c.verb] = a
		}
		a.count++
		if c.end > 0 {
			a.ended++
			a.sum += time.Duration(c.end - c.start)
		}
	}
	var verbs []string
	for v := range byVerb {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	var b strings.Builder
	fmt.Fprintf(&b, "| runsc process | per pod | mean ms per call | ms per pod |\n| --- | --- | --- | --- |\n")
	for _, v := range verbs {
		a := byVerb[v]
		mean, per := "still running", "-"
		if a.ended > 0 {
			mean = fmt.Sprintf("%.1f", ms(a.sum)/float64(a.ended))
			per = fmt.Sprintf("%.1f", ms(a.sum)/float64(n))
		}
		fmt.Fprintf(&b, "| `runsc %s` | %.1f | %s | %s |\n", v, float64(a.count)/float64(n), mean, per)
	}
	return b.String()
}
