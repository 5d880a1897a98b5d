package sandbox

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/errdefs"
)

// gVisor annotation families (runsc/specutils, runsc/boot, runsc/container).
const (
	gvisorPrefix         = "dev.gvisor."
	gvisorInternalPrefix = "dev.gvisor.internal."
	gvisorBundlePrefix   = "dev.gvisor.bundle."
	gvisorFlagPrefix     = "dev.gvisor.flag."
	gvisorMountPrefix    = "dev.gvisor.spec.mount."
	// criAnnotationPrefix: CRI's own annotations, which the controller
	// sets; a pod cannot supply them.
	criAnnotationPrefix = "io.kubernetes.cri."
)

// reservedPodFlags are runsc flags the controller sets or that would undo
// the operator's choices; no pod may override them even when flag
// overrides are allowed.
var reservedPodFlags = map[string]bool{
	"root":                true,
	"debug-log":           true,
	"network":             true,
	"systemd-cgroup":      true,
	"allow-flag-override": true,
}

var podFlagName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

// mountHintFields are the fields of a runsc mount hint
// (dev.gvisor.spec.mount.<name>.<field>, runsc/boot/mount_hints.go).
var mountHintFields = map[string]bool{"source": true, "type": true, "share": true, "options": true, "directfs": true}

// AnnotationPolicy is shimless's own rule for dev.gvisor.* annotations
// that come from a pod author, applied on top of the CRI handler's
// pod_annotations / container_annotations allowlist:
//   - dev.gvisor.internal.*: never (checkpoint/restore paths, device
//     proxies, seccomp: meant for the runtime, some name host paths);
//   - dev.gvisor.bundle.<name>: only bundles listed in AllowedBundles;
//   - dev.gvisor.flag.<name>: only with AllowFlagOverrides (runsc's own
//     --allow-flag-override rule still applies underneath);
//   - dev.gvisor.spec.mount.<name>.<field>: mount hints for the pod's
//     volumes, accepted;
//   - anything else under dev.gvisor. (cgroup parent, rootfs source and
//     tar paths on the host, container renames for restore, unknown keys):
//     never.
type AnnotationPolicy struct {
	AllowedBundles     []string
	AllowFlagOverrides bool
}

// Check returns an InvalidArgument error naming key if the policy refuses
// the annotation; keys outside dev.gvisor. are not its business.
func (p AnnotationPolicy) Check(key, value string) error {
	refuse := func(why string) error {
		return fmt.Errorf("annotation %q: %s: %w", key, why, errdefs.ErrInvalidArgument)
	}
	switch {
	case !strings.HasPrefix(key, gvisorPrefix):
		return nil
	case strings.HasPrefix(key, gvisorInternalPrefix):
		return refuse("dev.gvisor.internal.* is set by the runtime only, never by a pod")
	case strings.HasPrefix(key, gvisorBundlePrefix):
		name := strings.TrimPrefix(key, gvisorBundlePrefix)
		if !slices.Contains(p.AllowedBundles, name) {
			return refuse(fmt.Sprintf("gVisor config bundle %q is not in allowed_bundles of the runsc plugin config", name))
		}
		if value != "true" {
			return refuse(fmt.Sprintf("a bundle annotation must be \"true\", got %q", value))
		}
		return nil
	case strings.HasPrefix(key, gvisorFlagPrefix):
		name := strings.TrimPrefix(key, gvisorFlagPrefix)
		if !p.AllowFlagOverrides {
			return refuse("runsc flag overrides from pods are disabled (allow_pod_flag_overrides in the runsc plugin config)")
		}
		if !podFlagName.MatchString(name) {
			return refuse(fmt.Sprintf("%q is not a runsc flag name", name))
		}
		if reservedPodFlags[name] {
			return refuse(fmt.Sprintf("runsc flag %q is set by the runtime", name))
		}
		return nil
	case strings.HasPrefix(key, gvisorMountPrefix):
		parts := strings.Split(strings.TrimPrefix(key, gvisorMountPrefix), ".")
		if len(parts) != 2 || parts[0] == "" || !mountHintFields[parts[1]] {
			return refuse("a mount hint is dev.gvisor.spec.mount.<volume>.{source,type,share,options,directfs}")
		}
		return nil
	default:
		return refuse("not a gVisor annotation a pod may set")
	}
}

// CheckAll checks every annotation, in key order so the error is stable.
func (p AnnotationPolicy) CheckAll(annotations map[string]string) error {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := p.Check(k, annotations[k]); err != nil {
			return err
		}
	}
	return nil
}

// matchAnnotation reports whether key matches one of CRI's
// pod_annotations / container_annotations globs, with path.Match as CRI
// uses it (internal/cri/util.GetPassthroughAnnotations).
func matchAnnotation(globs []string, key string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, key); ok {
			return true
		}
	}
	return false
}

// podAnnotations selects the pod annotations that go into the sandbox
// spec: those the handler's pod_annotations allow, as stock CRI does, then
// checked against policy. dev.gvisor.internal.* is refused whether or not
// the allowlist names it: it is never a pod's to set.
func podAnnotations(in map[string]string, globs []string, policy AnnotationPolicy) (map[string]string, error) {
	out := map[string]string{}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, gvisorInternalPrefix) {
			return nil, policy.Check(k, in[k])
		}
	}
	for _, k := range keys {
		v := in[k]
		if !matchAnnotation(globs, k) || strings.HasPrefix(k, criAnnotationPrefix) {
			continue
		}
		if err := policy.Check(k, v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// HandlerConfig is what the controller needs from a CRI runtime handler
// ([plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.<name>]).
type HandlerConfig struct {
	RuntimeType          string   `json:"runtimeType"`
	Sandboxer            string   `json:"sandboxer"`
	PodAnnotations       []string `json:"PodAnnotations"`
	ContainerAnnotations []string `json:"ContainerAnnotations"`
}

// criRuntimeConfig is the part of CRI's runtime plugin config (its JSON
// form, internal/cri/config.RuntimeConfig) that names the handlers.
type criRuntimeConfig struct {
	Containerd struct {
		Runtimes map[string]HandlerConfig `json:"runtimes"`
	} `json:"containerd"`
}

// HandlersFromCRIConfig extracts the runtime handlers from CRI's runtime
// plugin config object (any value that marshals to its JSON form).
func HandlersFromCRIConfig(cfg any) (map[string]HandlerConfig, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var c criRuntimeConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	return c.Containerd.Runtimes, nil
}

// handlers is the controller's view of the CRI handlers, set once CRI's
// config is known.
type handlers struct {
	mu sync.RWMutex
	m  map[string]HandlerConfig
}

// SetHandlers gives the controller the CRI runtime handlers that use it,
// by handler name, for their pod_annotations.
func (c *Controller) SetHandlers(m map[string]HandlerConfig) {
	c.handlers.mu.Lock()
	c.handlers.m = m
	c.handlers.mu.Unlock()
}

// criSandboxMetadata is the part of CRI's "metadata" sandbox extension
// (internal/cri/store/sandbox.Metadata, JSON with a version envelope) that
// names the runtime handler.
type criSandboxMetadata struct {
	Metadata struct {
		RuntimeHandler string
	}
}

// handlerOf finds the CRI handler a sandbox was created through: by CRI's
// metadata extension, else the only handler with this controller's
// runtime type. No handler (a sandbox API client that is not CRI) means no
// pod annotation passes.
func (c *Controller) handlerOf(info sandbox.Sandbox) (string, HandlerConfig, bool) {
	c.handlers.mu.RLock()
	defer c.handlers.mu.RUnlock()
	if ext, ok := info.Extensions["metadata"]; ok && ext != nil {
		var md criSandboxMetadata
		if json.Unmarshal(ext.GetValue(), &md) == nil && md.Metadata.RuntimeHandler != "" {
			h, ok := c.handlers.m[md.Metadata.RuntimeHandler]
			return md.Metadata.RuntimeHandler, h, ok
		}
	}
	var name string
	var found HandlerConfig
	n := 0
	for k, h := range c.handlers.m {
		if h.RuntimeType == info.Runtime.Name {
			name, found = k, h
			n++
		}
	}
	if n == 1 {
		return name, found, true
	}
	return "", HandlerConfig{}, false
}

// Policy is the controller's annotation policy; the task runtime applies
// it to container specs.
func (c *Controller) Policy() AnnotationPolicy { return c.opts.Policy }
