package sandbox

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Bounds of resource values, from the kernel's cgroup interfaces.
const (
	minCPUPeriod = 1000      // µs, cpu.cfs_period_us lower bound
	maxCPUPeriod = 1_000_000 // µs, upper bound
	minCPUQuota  = 1000      // µs
	maxCPUQuota  = 1<<44 - 1 // µs, the kernel's max_cfs_runtime
	minCPUShares = 2         // cpu.shares bounds (cgroup v1)
	maxCPUShares = 262144
	// maxMemory: larger limits are no limit on any machine, and the
	// kernel's page rounding of values near MaxInt64 overflows.
	maxMemory = 1 << 60
	// Limits of resolv.conf (glibc accepts more than its documented
	// limits; these match kubelet's validation).
	maxDNSServers  = 3
	maxDNSSearches = 32
	maxDNSOptions  = 32
	maxHostname    = 64 // HOST_NAME_MAX
)

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// validatePodConfig rejects values of a PodSandboxConfig that would be
// written to files, argv or cgroups malformed, before anything is created.
func validatePodConfig(cfg *runtimeapi.PodSandboxConfig) error {
	if err := validateHostname(cfg.GetHostname()); err != nil {
		return err
	}
	if cfg.GetHostname() != "" && hostNetwork(cfg) {
		// It shares the node's UTS namespace: runc refuses this too, and
		// kubelet sends no hostname for host-network pods.
		return invalid("hostname %q: a host-network pod has the node's hostname", cfg.GetHostname())
	}
	if err := validateDNS(cfg.GetDnsConfig()); err != nil {
		return err
	}
	linux := cfg.GetLinux()
	if err := validateCgroupParent(linux.GetCgroupParent()); err != nil {
		return err
	}
	if err := ValidateSysctls(linux.GetSysctls(), hostNetwork(cfg)); err != nil {
		return err
	}
	if err := validateResources("resources", linux.GetResources()); err != nil {
		return err
	}
	if err := validateResources("overhead", linux.GetOverhead()); err != nil {
		return err
	}
	if u := linux.GetSecurityContext().GetNamespaceOptions().GetUsernsOptions(); u != nil {
		if err := validateIDMappings("uid", u.GetUids()); err != nil {
			return err
		}
		if err := validateIDMappings("gid", u.GetGids()); err != nil {
			return err
		}
	}
	return nil
}

// hasControl reports a byte that would break a line-based file or a
// command line.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

var hostnameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

func validateHostname(h string) error {
	if h == "" {
		return nil
	}
	if len(h) > maxHostname || !hostnameRe.MatchString(h) {
		return invalid("hostname %q: must be at most %d letters, digits, '-' and '.'", h, maxHostname)
	}
	return nil
}

var (
	dnsSearchRe = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$`)
	dnsOptionRe = regexp.MustCompile(`^[A-Za-z0-9_-]+(:[A-Za-z0-9_.-]+)?$`)
)

// validateDNS checks what becomes the pod's resolv.conf: a newline in any
// field would add lines of the pod author's choosing.
func validateDNS(dns *runtimeapi.DNSConfig) error {
	if dns == nil {
		return nil
	}
	if len(dns.Servers) > maxDNSServers {
		return invalid("dns_config: %d servers, at most %d", len(dns.Servers), maxDNSServers)
	}
	for _, s := range dns.Servers {
		if _, err := netip.ParseAddr(s); err != nil {
			return invalid("dns_config: server %q is not an IP address", s)
		}
	}
	if len(dns.Searches) > maxDNSSearches {
		return invalid("dns_config: %d search domains, at most %d", len(dns.Searches), maxDNSSearches)
	}
	for _, s := range dns.Searches {
		if len(s) > 253 || !dnsSearchRe.MatchString(s) {
			return invalid("dns_config: search domain %q is not a domain name", s)
		}
	}
	if len(dns.Options) > maxDNSOptions {
		return invalid("dns_config: %d options, at most %d", len(dns.Options), maxDNSOptions)
	}
	for _, o := range dns.Options {
		if !dnsOptionRe.MatchString(o) {
			return invalid("dns_config: option %q is not name or name:value", o)
		}
	}
	return nil
}

var systemdSliceRe = regexp.MustCompile(`^[A-Za-z0-9_.\\:@-]+\.slice$`)

// validateCgroupParent accepts an absolute cgroupfs path with no ".." or
// a systemd slice name.
func validateCgroupParent(p string) error {
	if p == "" {
		return nil
	}
	if hasControl(p) || len(p) > 4096 {
		return invalid("cgroup_parent %q: malformed", p)
	}
	if strings.HasSuffix(p, ".slice") && !strings.Contains(p, "/") {
		if !systemdSliceRe.MatchString(p) {
			return invalid("cgroup_parent %q: not a systemd slice name", p)
		}
		return nil
	}
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || slices.Contains(strings.Split(p, "/"), "..") {
		return invalid("cgroup_parent %q: must be a clean absolute cgroup path or a systemd slice", p)
	}
	return nil
}

// namespacedSysctls are the sysctls Kubernetes lets a pod set (they are
// per network/IPC namespace in Linux); net.* only with its own network.
// fs.nr_open is gVisor's: runsc applies it inside the sandbox's kernel.
var namespacedSysctls = map[string]bool{
	"kernel.shm_rmid_forced": true,
	"kernel.shmmax":          true,
	"kernel.shmall":          true,
	"kernel.shmmni":          true,
	"kernel.msgmax":          true,
	"kernel.msgmnb":          true,
	"kernel.msgmni":          true,
	"kernel.sem":             true,
	"fs.nr_open":             true,
}

var sysctlNameRe = regexp.MustCompile(`^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$`)

// ValidateSysctls accepts only namespaced sysctls with well-formed names
// and single-line values. Names may use '/' as separator (sysctl(8)).
func ValidateSysctls(sysctls map[string]string, hostNet bool) error {
	for name, v := range sysctls {
		n := strings.ReplaceAll(name, "/", ".")
		if !sysctlNameRe.MatchString(n) {
			return invalid("sysctl %q: malformed name", name)
		}
		switch {
		case namespacedSysctls[n], strings.HasPrefix(n, "fs.mqueue."):
		case strings.HasPrefix(n, "net."):
			if hostNet {
				return invalid("sysctl %q: a host-network pod cannot set net.* sysctls", name)
			}
		default:
			return invalid("sysctl %q: not a namespaced sysctl a pod may set", name)
		}
		if v == "" || len(v) > 4096 || hasControl(v) {
			return invalid("sysctl %q: malformed value %q", name, v)
		}
	}
	return nil
}

var cpusetRe = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)

// validateCpuset checks a cpuset list ("0-3,6"), each range ascending.
func validateCpuset(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 1024 || !cpusetRe.MatchString(s) {
		return invalid("%s %q: not a cpu list such as \"0-3,6\"", field, s)
	}
	for _, r := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, errA := strconv.ParseUint(lo, 10, 16)
		b := a
		var errB error
		if isRange {
			b, errB = strconv.ParseUint(hi, 10, 16)
		}
		if errA != nil || errB != nil || b < a {
			return invalid("%s %q: range %q is out of order or too large", field, s, r)
		}
	}
	return nil
}

// validateResources checks CRI resources (the pod's total, or its
// overhead). Zero means unset for every field.
func validateResources(field string, r *runtimeapi.LinuxContainerResources) error {
	if r == nil {
		return nil
	}
	if p := r.CpuPeriod; p != 0 && (p < minCPUPeriod || p > maxCPUPeriod) {
		return invalid("%s.cpu_period %d: must be %d..%d µs", field, p, minCPUPeriod, maxCPUPeriod)
	}
	if q := r.CpuQuota; q != 0 && q != -1 && (q < minCPUQuota || q > maxCPUQuota) {
		return invalid("%s.cpu_quota %d: must be -1 (unlimited) or %d..%d µs", field, q, minCPUQuota, maxCPUQuota)
	}
	if s := r.CpuShares; s != 0 && (s < minCPUShares || s > maxCPUShares) {
		return invalid("%s.cpu_shares %d: must be %d..%d", field, s, minCPUShares, maxCPUShares)
	}
	if m := r.MemoryLimitInBytes; m < 0 || m > maxMemory {
		return invalid("%s.memory_limit_in_bytes %d: must be 0 (unset) or 1..%d", field, m, int64(maxMemory))
	}
	if m := r.MemorySwapLimitInBytes; m < -1 || m > maxMemory {
		return invalid("%s.memory_swap_limit_in_bytes %d: must be -1, 0 (unset) or 1..%d", field, m, int64(maxMemory))
	}
	if o := r.OomScoreAdj; o < -1000 || o > 1000 {
		return invalid("%s.oom_score_adj %d: must be -1000..1000", field, o)
	}
	if err := validateCpuset(field+".cpuset_cpus", r.CpusetCpus); err != nil {
		return err
	}
	if err := validateCpuset(field+".cpuset_mems", r.CpusetMems); err != nil {
		return err
	}
	for _, h := range r.GetHugepageLimits() {
		if h == nil || h.Limit > maxMemory || !hugepageSizeRe.MatchString(h.PageSize) {
			return invalid("%s.hugepage_limits: malformed entry %v", field, h)
		}
	}
	return validateUnified(field+".unified", r.Unified)
}

var (
	hugepageSizeRe = regexp.MustCompile(`^[0-9]+[KMG]B$`)
	unifiedKeyRe   = regexp.MustCompile(`^[a-z_]+\.[a-z0-9_.]+$`)
)

// validateUnified: cgroup v2 keys are file names in the container's
// cgroup; a slash or ".." would reach outside it.
func validateUnified(field string, u map[string]string) error {
	for k, v := range u {
		if !unifiedKeyRe.MatchString(k) || strings.Contains(k, "..") {
			return invalid("%s: %q is not a cgroup v2 file name", field, k)
		}
		if hasControl(v) || len(v) > 4096 {
			return invalid("%s: malformed value for %q", field, k)
		}
	}
	return nil
}

// validateIDMappings: a mapping must be non-empty and stay inside the
// 32-bit id space on both sides.
func validateIDMappings(kind string, m []*runtimeapi.IDMapping) error {
	for _, x := range m {
		if x.GetLength() == 0 ||
			uint64(x.GetContainerId())+uint64(x.GetLength()) > 1<<32 ||
			uint64(x.GetHostId())+uint64(x.GetLength()) > 1<<32 {
			return invalid("user namespace %s mapping %d:%d:%d: empty or beyond the 32-bit id space", kind, x.GetContainerId(), x.GetHostId(), x.GetLength())
		}
	}
	return nil
}

// ValidateSpecResources checks the resources and sysctls of a container's
// OCI spec as CRI built it from ContainerConfig: CRI converts negative
// CRI values to huge unsigned ones and passes the rest through.
func ValidateSpecResources(spec *specs.Spec) error {
	if spec == nil || spec.Linux == nil {
		return nil
	}
	if err := ValidateSysctls(spec.Linux.Sysctl, false); err != nil {
		return err
	}
	return ValidateLinuxResources(spec.Linux.Resources)
}

// ValidateLinuxResources checks OCI resources (container create and
// resource updates).
func ValidateLinuxResources(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if c := r.CPU; c != nil {
		if c.Period != nil && *c.Period != 0 && (*c.Period < minCPUPeriod || *c.Period > maxCPUPeriod) {
			return invalid("cpu period %d: must be %d..%d µs", *c.Period, minCPUPeriod, maxCPUPeriod)
		}
		if c.Quota != nil && *c.Quota != 0 && *c.Quota != -1 && (*c.Quota < minCPUQuota || *c.Quota > maxCPUQuota) {
			return invalid("cpu quota %d: must be -1 (unlimited) or %d..%d µs", *c.Quota, minCPUQuota, maxCPUQuota)
		}
		if c.Shares != nil && *c.Shares != 0 && (*c.Shares < minCPUShares || *c.Shares > maxCPUShares) {
			return invalid("cpu shares %d: must be %d..%d", *c.Shares, minCPUShares, maxCPUShares)
		}
		if err := validateCpuset("cpuset cpus", c.Cpus); err != nil {
			return err
		}
		if err := validateCpuset("cpuset mems", c.Mems); err != nil {
			return err
		}
	}
	if m := r.Memory; m != nil {
		for name, v := range map[string]*int64{"memory limit": m.Limit, "memory reservation": m.Reservation, "memory swap": m.Swap} {
			if v != nil && (*v < -1 || *v > maxMemory) {
				return invalid("%s %d: must be -1 (unlimited), 0 (unset) or 1..%d", name, *v, int64(maxMemory))
			}
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil && *p.Limit < -1 {
		return invalid("pids limit %d: must be -1 (unlimited) or positive", *p.Limit)
	}
	return validateUnified("unified", r.Unified)
}
