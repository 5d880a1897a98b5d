package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// hostProc is one host process as the bench sees it.
type hostProc struct {
	pid, ppid int
	comm      string
	cmdline   string
	cgroup    string
}

// scanProcs reads every process's ppid, comm, command line and cgroups.
func scanProcs() map[int]*hostProc {
	out := map[int]*hostProc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parens.
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		raw, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		out[pid] = &hostProc{
			pid: pid, ppid: ppid, comm: s[open+1 : closing],
			cmdline: strings.ReplaceAll(string(raw), "\x00", " "),
			cgroup:  string(cg),
		}
	}
	return out
}

// podProcs returns the processes of a pod: those whose command line or
// cgroup names one of ids (the pod's and its containers'), and their
// descendants. exclude (containerd, the bench) is never part of a pod.
func podProcs(all map[int]*hostProc, ids []string, exclude ...int) []*hostProc {
	skip := map[int]bool{os.Getpid(): true}
	for _, p := range exclude {
		skip[p] = true
	}
	// A runsc CLI invocation (comm "runsc": containerd's stats collector
	// runs `runsc events` per container every second) is transient, not
	// the pod's: the sandbox's own are runsc-sandbox, runsc-gofer and the
	// platform's stubs.
	for pid, p := range all {
		if p.comm == "runsc" {
			skip[pid] = true
		}
	}
	in := map[int]bool{}
	for pid, p := range all {
		if skip[pid] {
			continue
		}
		for _, id := range ids {
			if id != "" && (strings.Contains(p.cmdline, id) || strings.Contains(p.cgroup, id)) {
				in[pid] = true
				break
			}
		}
	}
	// Descendants: repeat until no process is added.
	for changed := true; changed; {
		changed = false
		for pid, p := range all {
			if !in[pid] && !skip[pid] && in[p.ppid] {
				in[pid] = true
				changed = true
			}
		}
	}
	var out []*hostProc
	for pid := range in {
		out = append(out, all[pid])
	}
	return out
}

// pssKB is a process's proportional set size from smaps_rollup.
func pssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	return fieldKB(string(b), "Pss:")
}

// rollupKB is one field of a process's smaps_rollup.
func rollupKB(pid int, key string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	return fieldKB(string(b), key)
}

// procKind names what a pod's process is, for the PSS breakdown: runsc's
// sandbox process (its Sentry) and gofers by their argv, the platform's
// stub processes (children named like the sandbox, argv empty), else its
// comm.
func procKind(p *hostProc) string {
	switch {
	case strings.Contains(p.cmdline, " boot ") || strings.HasPrefix(p.comm, "runsc-sandbox"):
		return "sandbox (Sentry)"
	case strings.Contains(p.cmdline, " gofer ") || strings.HasPrefix(p.comm, "runsc-gofer"):
		return "gofer"
	case strings.TrimSpace(p.cmdline) == "" || strings.HasPrefix(p.comm, "exe"):
		return "stub (" + p.comm + ")"
	}
	return p.comm
}

// rssKB is a process's VmRSS.
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return fieldKB(string(b), "VmRSS:")
}

func fieldKB(s, key string) int {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.Atoi(f[1])
				return kb
			}
		}
	}
	return 0
}

// sandboxOwn says whether a process is one of gVisor's own (sandbox,
// gofers, the platform's stubs: all runsc-*), as opposed to what a
// runtime adds per pod (a shim) or runc's processes.
func sandboxOwn(p *hostProc) bool {
	return strings.HasPrefix(p.comm, "runsc") || strings.HasPrefix(p.comm, "exe")
}
