package sandbox

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRI's CreateContainer bind-mounts <cri root>/sandboxes/<id>/{hostname,
// hosts,resolv.conf} into each container when they exist. containerd's
// podsandbox controller writes them; for any other controller nobody does,
// so this controller writes them itself.

// criSandboxDir is CRI's per-sandbox directory.
func (c *Controller) criSandboxDir(id string) string {
	return filepath.Join(c.opts.CRIRootDir, "sandboxes", id)
}

// writeCRIFiles writes the pod's hostname, hosts and resolv.conf.
func (c *Controller) writeCRIFiles(id, hostname string, cfg *runtimeapi.PodSandboxConfig) error {
	dir := c.criSandboxDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "hostname"), []byte(hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("write pod hostname: %w", err)
	}
	if err := copyFile(c.opts.HostsFile, filepath.Join(dir, "hosts")); err != nil {
		return fmt.Errorf("write pod hosts file: %w", err)
	}
	resolv := filepath.Join(dir, "resolv.conf")
	if dns := cfg.GetDnsConfig(); dns != nil {
		if err := os.WriteFile(resolv, []byte(resolvConf(dns)), 0o644); err != nil {
			return fmt.Errorf("write pod resolv.conf: %w", err)
		}
	} else if err := copyFile(c.opts.ResolvConf, resolv); err != nil {
		return fmt.Errorf("write pod resolv.conf: %w", err)
	}
	return nil
}

// resolvConf renders a CRI DNS config as resolv.conf.
func resolvConf(dns *runtimeapi.DNSConfig) string {
	var b strings.Builder
	if len(dns.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
	}
	for _, s := range dns.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
	}
	return b.String()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
