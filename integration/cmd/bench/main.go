// Command bench measures pod start, teardown, exec, per-pod host cost,
// concurrency and containerd restart for shimless's runsc handlers, stock
// containerd v2.4.2 with gVisor's containerd-shim-runsc-v1, runc, and the
// raw runsc CLI (the floor), interleaved in one run, and prints one
// markdown report with p50/p95/p99, the ratios and the goals of issue 12.
// It drives CRI with the Go client (no crictl: no per-call process cost).
//
//	make bench                                  # root; builds what it needs
//	BENCH_N=20 BENCH_SCALE="20 50" make bench   # more iterations / scale steps
//
// It uses the integration harness (each containerd on private dirs with
// its own CNI bridge, no route out) and needs root, `make binaries images
// bin/runc stock`, and Debian's busybox-static (/bin/busybox) for the
// floor's container.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shimless/shimless/integration/harness"
)

type options struct {
	n, execs, breakdownPods int
	scale                   []int
	restart, restartStock   bool
	out                     string
	only                    string
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return v
	}
	return def
}

func main() {
	var o options
	var scale string
	flag.IntVar(&o.n, "n", envInt("BENCH_N", 10), "pod starts per target, serial and interleaved (env BENCH_N)")
	flag.IntVar(&o.execs, "execs", envInt("BENCH_EXECS", 3), "ExecSync calls per serial pod (env BENCH_EXECS)")
	flag.IntVar(&o.breakdownPods, "breakdown-pods", 3, "pods per shimless handler for the runsc call breakdown")
	flag.StringVar(&scale, "scale", envOr("BENCH_SCALE", "20 50"), "concurrent pod starts per step (env BENCH_SCALE; \"\" = none)")
	flag.BoolVar(&o.restart, "restart", os.Getenv("BENCH_RESTART") != "0", "containerd restart (kill -9) with the largest scale step's pods running, shimless runsc (env BENCH_RESTART=0 skips)")
	flag.BoolVar(&o.restartStock, "restart-stock", os.Getenv("BENCH_RESTART") == "all", "restart the stock containerd with its shim pods too: minutes, and its pods may not all come back (env BENCH_RESTART=all)")
	flag.StringVar(&o.out, "o", "", "also write the report to this file")
	flag.StringVar(&o.only, "targets", os.Getenv("BENCH_TARGETS"), "comma-separated target keys to run (runsc,shim-style,stock,runc,floor; default all)")
	flag.Parse()
	for _, f := range strings.Fields(scale) {
		c, err := strconv.Atoi(f)
		if err != nil || c < 1 {
			log.Fatalf("bad scale step %q", f)
		}
		o.scale = append(o.scale, c)
	}
	if os.Geteuid() != 0 {
		log.Fatal("bench needs root (it starts containerd, runsc and CNI)")
	}
	t := &tb{}
	rc := 0
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(errFatal); !ok {
					log.Printf("panic: %v", r)
				}
				rc = 1
			}
		}()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-sig
			log.Print("interrupted: cleaning up")
			t.runCleanups()
			os.Exit(1)
		}()
		if err := run(t, o); err != nil {
			log.Print(err)
			rc = 1
		}
	}()
	log.Print("cleaning up")
	t.runCleanups()
	if t.Failed() {
		rc = 1
	}
	os.Exit(rc)
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// targets, keyed as in -targets.
type targets struct {
	keys   []string
	byKey  map[string]target
	shim   *harness.Daemon // shimless containerd
	stock  *harness.Daemon
	floor  *floorTarget
	metric string // shimless containerd's metrics URL
	// countLog is the stock shim's counted runsc invocations (handler
	// runsc-counted).
	countLog string
}

func setup(t *tb, o options, repo, work string) (*targets, error) {
	bin := filepath.Join(repo, "bin")
	want := map[string]bool{}
	for _, k := range strings.Split(o.only, ",") {
		if k = strings.TrimSpace(k); k != "" {
			want[k] = true
		}
	}
	all := len(want) == 0
	ts := &targets{byKey: map[string]target{}}
	add := func(key string, tg target) {
		ts.keys = append(ts.keys, key)
		ts.byKey[key] = tg
	}
	if all || want["runsc"] || want["shim-style"] || want["runc"] {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		ts.metric = fmt.Sprintf("http://127.0.0.1:%d/v1/metrics", port)
		log.Print("starting shimless containerd")
		ts.shim = harness.Start(t, harness.Options{
			ExtraConfig: fmt.Sprintf("[metrics]\n  address = \"127.0.0.1:%d\"\n", port),
		})
		if all || want["runsc"] {
			add("runsc", &criTarget{label: "shimless `runsc`", handler: "runsc", d: ts.shim})
		}
		if all || want["shim-style"] {
			add("shim-style", &criTarget{label: "shimless `runsc-shim-style`", handler: "runsc-shim-style", d: ts.shim})
		}
	}
	if all || want["stock"] {
		for _, b := range []string{"stock/containerd", "stock/containerd-shim-runsc-v1"} {
			if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
				return nil, fmt.Errorf("%w (run `make stock`)", err)
			}
		}
		wrapper, countLog, err := writeRunscWrapper(work, filepath.Join(bin, "runsc"))
		if err != nil {
			return nil, err
		}
		ts.countLog = countLog
		cfg, err := writeStockConfig(work, bin, wrapper)
		if err != nil {
			return nil, err
		}
		log.Print("starting stock containerd")
		ts.stock = harness.Start(t, harness.Options{
			Containerd: filepath.Join(bin, "stock", "containerd"),
			ConfigFile: cfg,
			// The shim is found in PATH: bin/stock first.
			Env: []string{"PATH=" + filepath.Join(bin, "stock") + ":" + bin + ":" + os.Getenv("PATH")},
		})
		add("stock", &criTarget{label: "stock containerd + gVisor shim", handler: "runsc", d: ts.stock})
	}
	if ts.shim != nil && (all || want["runc"]) {
		add("runc", &criTarget{label: "runc (shimless containerd)", handler: "runc", d: ts.shim})
	}
	if all || want["floor"] {
		f, err := newFloor(filepath.Join(work, "floor"), filepath.Join(bin, "runsc"), filepath.Join(bin, "shimless-pause"), "/bin/busybox")
		if err != nil {
			return nil, err
		}
		t.Cleanup(f.cleanup)
		ts.floor = f
		add("floor", f)
	}
	return ts, nil
}

// stockConfig is stock containerd's config: no shimless tables, the
// gVisor shim's handler as gVisor documents it (harness.AdaptConfig adds
// the private dirs, CNI and the pause image).
const stockConfig = `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = "runc"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = "%s"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
    runtime_type = "io.containerd.runsc.v1"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]
      TypeUrl = "io.containerd.runsc.v1.options"
      ConfigPath = "%s"
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc-counted]
    runtime_type = "io.containerd.runsc.v1"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc-counted.options]
      TypeUrl = "io.containerd.runsc.v1.options"
      ConfigPath = "%s"
`

// stockRunscTOML is the gVisor shim's runsc.toml: our runsc, a private
// runsc root, and the flags shimless's runsc-shim-style handler runs with
// (the harness's runsc.toml plus the oci-seccomp shimless sets by
// default).
const stockRunscTOML = `binary_name = "%s"
root = "%s"
[runsc_config]
  net-raw = "true"
  oci-seccomp = "true"
`

func writeStockConfig(work, bin, wrapper string) (string, error) {
	toml := filepath.Join(work, "stock-runsc.toml")
	body := fmt.Sprintf(stockRunscTOML, filepath.Join(bin, "runsc"), filepath.Join(work, "stock-runsc-root"))
	if err := os.WriteFile(toml, []byte(body), 0o644); err != nil {
		return "", err
	}
	counted := filepath.Join(work, "stock-runsc-counted.toml")
	body = fmt.Sprintf(stockRunscTOML, wrapper, filepath.Join(work, "stock-runsc-root"))
	if err := os.WriteFile(counted, []byte(body), 0o644); err != nil {
		return "", err
	}
	cfg := filepath.Join(work, "stock-config.toml")
	return cfg, os.WriteFile(cfg, []byte(fmt.Sprintf(stockConfig, filepath.Join(bin, "runc"), toml, counted)), 0o644)
}

// serial results of one target.
type serialResult struct {
	run, create, start, firstLog, total, server, teardown, exec samples
	procs, extra                                                []float64
	pssKB                                                       []float64
	extraComms                                                  map[string]bool
	// byKind: processes and PSS (KB) summed over the measured pods, by
	// process kind (procKind); pssPods is how many pods were measured.
	byKind  map[string]*kindUse
	pssPods int
	errs    []string
}

// kindUse is what the processes of one kind hold, summed over pods.
type kindUse struct{ procs, pssKB, anonKB, fileKB int }

// scaleResult is one concurrent step of one target.
type scaleResult struct {
	n, failed                  int
	startWall, teardownWall    time.Duration
	start, teardown            samples
	procs, extra, pssKB, rssKB float64 // per pod
	restartCRI, restartReady   time.Duration
	restartErr                 string
	errs                       []string
}

func run(t *tb, o options) error {
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	for {
		if _, err := os.Stat(filepath.Join(repo, "cmd", "containerd")); err == nil {
			break
		}
		if repo == "/" {
			return fmt.Errorf("run from the repository (cmd/containerd not found)")
		}
		repo = filepath.Dir(repo)
	}
	work, err := os.MkdirTemp("/tmp", "shlb-")
	if err != nil {
		return err
	}
	t.Cleanup(func() {
		// runsc keeps <root>/null-netns bind-mounted (the floor's root and
		// the stock shim's root are under work).
		for _, m := range []string{"floor/root/null-netns", "stock-runsc-root/k8s.io/null-netns"} {
			_ = syscall.Unmount(filepath.Join(work, m), syscall.MNT_DETACH)
		}
		if err := os.RemoveAll(work); err != nil {
			log.Printf("cleanup: %v", err)
		}
	})
	began := time.Now().UTC()
	ts, err := setup(t, o, repo, work)
	if err != nil {
		return err
	}
	serial := map[string]*serialResult{}
	for _, k := range ts.keys {
		serial[k] = &serialResult{}
	}
	// Serial, interleaved: iteration i runs one pod on every target in
	// turn. Iteration -1 warms caches and is not recorded.
	log.Printf("serial: %d pods per target, interleaved", o.n)
	for i := -1; i < o.n; i++ {
		for _, k := range ts.keys {
			serialOne(ts.byKey[k], serial[k], i, o)
		}
	}
	var breakdowns []string
	if ts.shim != nil {
		for _, h := range []string{"runsc", "runsc-shim-style"} {
			if _, ok := ts.byKey[map[string]string{"runsc": "runsc", "runsc-shim-style": "shim-style"}[h]]; !ok {
				continue
			}
			log.Printf("runsc call breakdown: %s", h)
			breakdowns = append(breakdowns, runscBreakdown(ts, h, o.breakdownPods))
		}
	}
	if ts.stock != nil {
		log.Print("runsc call breakdown: stock gVisor shim")
		breakdowns = append(breakdowns, shimBreakdown(ts, o.breakdownPods))
	}
	scaled := map[string][]*scaleResult{}
	for _, c := range o.scale {
		for _, k := range ts.keys {
			// Restart ours (the goal); the stock shim's only when asked:
			// with 50 shim pods it takes minutes.
			restart := o.restart && c == o.scale[len(o.scale)-1] && (k == "runsc" || (k == "stock" && o.restartStock))
			log.Printf("scale: %d concurrent pods on %s", c, k)
			scaled[k] = append(scaled[k], scaleStep(ts, k, c, restart))
		}
	}
	report := renderReport(ts, o, began, serial, scaled, breakdowns)
	fmt.Print(report)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(o.out, []byte(report), 0o644)
	}
	return nil
}

func serialOne(tg target, r *serialResult, i int, o options) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("s%d-%d", i+1, time.Now().UnixNano()%1e6)
	p, ph, err := tg.startPod(ctx, name)
	record := i >= 0
	if err != nil {
		r.errs = append(r.errs, err.Error())
		log.Printf("%s: %v", tg.name(), err)
	} else if record {
		r.run = append(r.run, ph.run)
		r.create = append(r.create, ph.create)
		r.start = append(r.start, ph.start)
		r.firstLog = append(r.firstLog, ph.firstLog)
		r.total = append(r.total, ph.total())
		r.server = append(r.server, ph.run+ph.create+ph.start)
	}
	if err == nil {
		for e := 0; e < o.execs; e++ {
			begin := time.Now()
			if err := tg.exec(ctx, p); err != nil {
				r.errs = append(r.errs, err.Error())
				log.Printf("%s: exec: %v", tg.name(), err)
				break
			}
			if record {
				r.exec = append(r.exec, time.Since(begin))
			}
		}
		if record && i < 3 {
			procs := podProcs(scanProcs(), []string{p.id, p.cid}, tg.containerdPid())
			pss, extra := 0, 0
			if r.byKind == nil {
				r.byKind = map[string]*kindUse{}
			}
			r.pssPods++
			for _, pr := range procs {
				pss += pssKB(pr.pid)
				u := r.byKind[procKind(pr)]
				if u == nil {
					u = &kindUse{}
					r.byKind[procKind(pr)] = u
				}
				u.procs++
				u.pssKB += pssKB(pr.pid)
				u.anonKB += rollupKB(pr.pid, "Pss_Anon:") + rollupKB(pr.pid, "Pss_Shmem:")
				u.fileKB += rollupKB(pr.pid, "Pss_File:")
				if !sandboxOwn(pr) {
					extra++
					if r.extraComms == nil {
						r.extraComms = map[string]bool{}
					}
					r.extraComms[pr.comm] = true
				}
			}
			r.procs = append(r.procs, float64(len(procs)))
			r.extra = append(r.extra, float64(extra))
			r.pssKB = append(r.pssKB, float64(pss))
		}
	}
	if p == nil {
		return
	}
	begin := time.Now()
	if err := tg.teardown(ctx, p); err != nil {
		r.errs = append(r.errs, err.Error())
		log.Printf("%s: teardown: %v", tg.name(), err)
	} else if record {
		r.teardown = append(r.teardown, time.Since(begin))
	}
	if f, ok := tg.(*floorTarget); ok {
		f.removeFiles(p)
	}
}

// runscBreakdown counts the runsc invocations (CLI processes and control
// RPCs) of pod starts, execs and teardowns on one shimless handler from
// containerd's metrics.
func runscBreakdown(ts *targets, handler string, n int) string {
	tg := &criTarget{handler: handler, d: ts.shim}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "#### handler `%s` (%d pods, serial)\n\n", handler, n)
	s0, err := scrape(ts.metric)
	if err != nil {
		return b.String() + "metrics: " + err.Error() + "\n"
	}
	var pods []*pod
	for i := 0; i < n; i++ {
		p, _, err := tg.startPod(ctx, fmt.Sprintf("b%d-%d", i, time.Now().UnixNano()%1e6))
		if p != nil {
			pods = append(pods, p)
		}
		if err != nil {
			fmt.Fprintf(&b, "pod start: %v\n", err)
		}
	}
	s1, _ := scrape(ts.metric)
	time.Sleep(idleWindow)
	s1idle, _ := scrape(ts.metric)
	for _, p := range pods {
		_ = tg.exec(ctx, p)
	}
	s2, _ := scrape(ts.metric)
	for _, p := range pods {
		_ = tg.teardown(ctx, p)
	}
	s3, _ := scrape(ts.metric)
	fmt.Fprintf(&b, "Pod start (RunPodSandbox + CreateContainer + StartContainer):\n\n%s\n", breakdown(s0, s1, n))
	fmt.Fprintf(&b, "Idle (%s with the %d pods running, no CRI calls but the bench's metrics scrape):\n\n%s\n", idleWindow, n, breakdown(s1, s1idle, n))
	fmt.Fprintf(&b, "ExecSync `true`:\n\n%s\n", breakdown(s1idle, s2, n))
	fmt.Fprintf(&b, "Teardown (StopPodSandbox + RemovePodSandbox):\n\n%s\n", breakdown(s2, s3, n))
	return b.String()
}

// idleWindow is how long the breakdowns watch idle pods: containerd's
// CRI stats collector asks every task for metrics every second.
const idleWindow = 5 * time.Second

func scaleStep(ts *targets, key string, c int, restart bool) *scaleResult {
	tg := ts.byKey[key]
	r := &scaleResult{n: c}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cpid := tg.containerdPid()
	rss0 := 0
	if cpid != 0 {
		rss0 = rssKB(cpid)
	}
	pods := make([]*pod, c)
	durs := make([]time.Duration, c)
	errs := make([]error, c)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p0 := time.Now()
			pods[i], _, errs[i] = tg.startPod(ctx, fmt.Sprintf("c%d-%d-%d", c, i, time.Now().UnixNano()%1e6))
			durs[i] = time.Since(p0)
		}(i)
	}
	wg.Wait()
	r.startWall = time.Since(begin)
	var ok []*pod
	for i := range pods {
		if errs[i] != nil {
			r.failed++
			r.errs = append(r.errs, errs[i].Error())
			continue
		}
		r.start = append(r.start, durs[i])
		ok = append(ok, pods[i])
	}
	// Idle cost: let the pods settle, then count processes and memory.
	time.Sleep(time.Second)
	all := scanProcs()
	var procs, extra, pss int
	for _, p := range ok {
		for _, pr := range podProcs(all, []string{p.id, p.cid}, cpid) {
			procs++
			pss += pssKB(pr.pid)
			if !sandboxOwn(pr) {
				extra++
			}
		}
	}
	if len(ok) > 0 {
		r.procs = float64(procs) / float64(len(ok))
		r.extra = float64(extra) / float64(len(ok))
		r.pssKB = float64(pss) / float64(len(ok))
		if cpid != 0 {
			r.rssKB = float64(rssKB(cpid)-rss0) / float64(len(ok))
		}
	}
	if ct, isCRI := tg.(*criTarget); isCRI && restart {
		log.Printf("restart: kill -9 containerd with %d pods of %s", len(ok), key)
		ct.d.Kill9()
		t0 := time.Now()
		ct.d.Restart()
		r.restartCRI = time.Since(t0)
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
		if err := allReady(rctx, ct.d, ok); err != nil {
			r.restartErr = err.Error()
		}
		rcancel()
		r.restartReady = time.Since(t0)
	}
	tdurs := make([]time.Duration, len(ok))
	terrs := make([]error, len(ok))
	begin = time.Now()
	for i, p := range ok {
		wg.Add(1)
		go func(i int, p *pod) {
			defer wg.Done()
			p0 := time.Now()
			terrs[i] = tg.teardown(ctx, p)
			tdurs[i] = time.Since(p0)
		}(i, p)
	}
	wg.Wait()
	r.teardownWall = time.Since(begin)
	for i := range ok {
		if terrs[i] != nil {
			r.errs = append(r.errs, terrs[i].Error())
			continue
		}
		r.teardown = append(r.teardown, tdurs[i])
	}
	// Pods whose start failed half-way: remove what exists.
	for i, p := range pods {
		if errs[i] != nil && p != nil {
			_ = tg.teardown(ctx, p)
		}
	}
	if f, isFloor := tg.(*floorTarget); isFloor {
		for _, p := range pods {
			if p != nil {
				f.removeFiles(p)
			}
		}
	}
	// A quiet second between steps.
	time.Sleep(time.Second)
	return r
}

// machine describes the host for the report.
func machine() string {
	var b strings.Builder
	cpu := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	mem := 0
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = fieldKB(string(data), "MemTotal:")
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "%d CPUs (%s), %.1f GiB RAM, kernel %s, Go %s, load average at the end: %s",
		runtime.NumCPU(), cpu, float64(mem)/1024/1024, strings.TrimSpace(string(kernel)), runtime.Version(),
		strings.Join(strings.Fields(string(load))[:3], " "))
	return b.String()
}
