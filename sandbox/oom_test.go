package sandbox

import "testing"

func TestParseOOMKills(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		ok       bool
	}{
		{"no kill", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", 0, true},
		{"two kills", "oom_kill_disable 0\nunder_oom 1\noom_kill 2\n", 2, true},
		{"old kernel", "oom_kill_disable 0\nunder_oom 0\n", 0, false},
		{"garbage", "oom_kill x\n", 0, false},
		{"empty", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := parseOOMKills(tc.in)
			if n != tc.want || ok != tc.ok {
				t.Errorf("parseOOMKills = %d, %v; want %d, %v", n, ok, tc.want, tc.ok)
			}
		})
	}
}
