// Command devconfig writes the same containerd config the integration
// harness uses (runc and runsc handlers, private dirs, a CNI bridge with no
// route out) for `make demo` and for trying shimless by hand.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shimless/shimless/integration/harness"
)

func main() {
	dir := flag.String("dir", "", "directory for config, root, state and socket (required)")
	runscPath := flag.String("runsc", "bin/runsc", "runsc binary")
	bridge := flag.String("bridge", "shldemo0", "CNI bridge name")
	subnet := flag.String("subnet", "10.254.77.0/24", "pod subnet")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "devconfig: -dir is required")
		os.Exit(2)
	}
	runsc, err := filepath.Abs(*runscPath)
	if err == nil {
		err = harness.WriteConfig(harness.Config{
			Dir: *dir, Root: filepath.Join(*dir, "root"), State: filepath.Join(*dir, "state"),
			Address: filepath.Join(*dir, "c.sock"), RunscPath: runsc, RuncPath: filepath.Join(filepath.Dir(runsc), "runc"),
			Bridge: *bridge, Subnet: *subnet,
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devconfig:", err)
		os.Exit(1)
	}
}
