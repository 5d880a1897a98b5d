package runtime

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// TestBinaryLogger: the logging binary gets the process's stdout at fd 3,
// CONTAINER_ID/CONTAINER_NAMESPACE and the URI's query as arguments, and
// is ready once fd 5 closes.
func TestBinaryLogger(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "logger")
	body := "#!/bin/sh\nexec 5>&-\necho \"$CONTAINER_NAMESPACE/$CONTAINER_ID $*\" > \"$2\"\ncat <&3 >> \"$2\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "log")
	uri, err := url.Parse("binary://" + script + "?path=" + url.QueryEscape(out))
	if err != nil {
		t.Fatal(err)
	}
	ctx := namespaces.WithNamespace(context.Background(), "ns1")
	l, err := startLogger(ctx, "c1", uri)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.out.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	l.out.Close()
	l.err.Close()
	<-l.waited // EOF on fd 3 ends the script
	l.stop()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "ns1/c1 path "+out+"\nhello\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	if u, ok := loggerURI("/run/fifo/stdout"); ok {
		t.Errorf("loggerURI(path) = %v", u)
	}
	if p := fileURIPath("file:///var/log/c1.log"); !strings.HasSuffix(p, "/var/log/c1.log") || strings.Contains(p, "file:") {
		t.Errorf("fileURIPath = %q", p)
	}
}
