package runsc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeScript(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	exe := writeScript(t, dir, "runsc", "true", 0o755)
	noexec := writeScript(t, dir, "runsc-noexec", "true", 0o644)
	for _, tc := range []struct {
		name, in, want, wantErr string
	}{
		{"absolute executable", exe, exe, ""},
		{"not executable", noexec, "", "not executable"},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
		{"directory", dir + "/", "", "not a regular file"},
		{"bare name not anywhere", "shimless-no-such-runsc", "", "not found next to containerd or in PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body, want, wantErr string
	}{
		{"runsc", `echo "runsc version release-20260901.0"; echo "spec: 1.1.0"`, "release-20260901.0", ""},
		{"fails", `echo broken >&2; exit 3`, "", "broken"},
		{"not runsc", `echo "hello"`, "", "not runsc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{Path: writeScript(t, dir, tc.name, tc.body, 0o755)}
			got, err := c.Version(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
