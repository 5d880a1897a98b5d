package runsc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// stateFile is the part of runsc's container state file
// (<root>/<container>_sandbox:<sandbox>.state) that names host processes.
type stateFile struct {
	GoferPid int `json:"goferPid"`
	Sandbox  *struct {
		Pid int `json:"pid"`
	} `json:"sandbox"`
}

// ParseStateFileName splits runsc's state file name into its container and
// sandbox ids; ok is false for any other file.
func ParseStateFileName(name string) (containerID, sandboxID string, ok bool) {
	base, found := strings.CutSuffix(name, ".state")
	if !found {
		return "", "", false
	}
	containerID, sandboxID, found = strings.Cut(base, "_sandbox:")
	if !found || containerID == "" || sandboxID == "" {
		return "", "", false
	}
	return containerID, sandboxID, true
}

// SandboxProcesses returns the host processes runsc recorded for a sandbox:
// the sandbox process and the gofer of each of its containers, read from
// runsc's state files under the root. It starts no runsc process and reads
// nothing else of /proc. Callers check each pid before signalling it (a
// recorded pid may have exited and been reused).
func (c *Client) SandboxProcesses(sandboxID string) []int {
	entries, err := os.ReadDir(c.Root)
	if err != nil {
		return nil
	}
	seen := map[int]bool{}
	var out []int
	add := func(pid int) {
		if pid > 0 && !seen[pid] {
			seen[pid] = true
			out = append(out, pid)
		}
	}
	for _, e := range entries {
		_, sid, ok := ParseStateFileName(e.Name())
		if !ok || sid != sandboxID {
			continue
		}
		data, err := os.ReadFile(filepath.Join(c.Root, e.Name()))
		if err != nil {
			continue
		}
		var st stateFile
		if json.Unmarshal(data, &st) != nil {
			continue
		}
		if st.Sandbox != nil {
			add(st.Sandbox.Pid)
		}
		add(st.GoferPid)
	}
	return out
}

// Containers returns the ids of the containers runsc keeps state for in a
// sandbox (its root container included), from the state files' names.
func (c *Client) Containers(sandboxID string) []string {
	entries, err := os.ReadDir(c.Root)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if cid, sid, ok := ParseStateFileName(e.Name()); ok && sid == sandboxID {
			out = append(out, cid)
		}
	}
	return out
}
