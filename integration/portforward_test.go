//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shimless/shimless/integration/harness"
)

// CRI port-forward into a runsc pod, with every handler: the pod's network
// stack is gVisor's netstack in the Sentry, reached through the sandbox's
// control socket (patch 0002 + Controller.DialPort), as `kubectl
// port-forward` does through CRI. Two connections in a row, and the pod
// still stops cleanly.
func TestRunscPortForward(t *testing.T) {
	d := harness.Start(t, harness.Options{})
	if _, err := d.Crictl("", "version"); err != nil { // writes crictl.yaml
		t.Fatal(err)
	}
	forEachHandler(t, func(t *testing.T, handler string) {
		pod := d.PodConfig("pf-" + handler)
		podID := d.RunPod(pod, handler)
		d.StartContainer(podID, pod, harness.ContainerConfig("web", "sh", "-c",
			"mkdir -p /www && echo hello-from-"+handler+" > /www/index.html && exec httpd -f -p 8080 -h /www"))

		// A free loopback port for crictl to listen on.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		local := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(d.BinDir, "crictl"), "--config", filepath.Join(d.Dir, "crictl.yaml"),
			"port-forward", podID, fmt.Sprintf("%d:8080", local))
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		client := &http.Client{Timeout: 10 * time.Second}
		for i := range 2 {
			var body string
			d.Eventually(30*time.Second, func() error {
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", local))
				if err != nil {
					return fmt.Errorf("GET through port-forward: %v (crictl: %s)", err, out.String())
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				body = string(b)
				return nil
			})
			if strings.TrimSpace(body) != "hello-from-"+handler {
				t.Fatalf("request %d through port-forward: %q", i, body)
			}
		}
		cancel()
		_ = cmd.Wait()
		stopAndRemove(t, d, podID)
		noLeaks(t, d)
	})
}
