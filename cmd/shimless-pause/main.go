// Command shimless-pause is the root process of every runsc pod sandbox
// (and the pause image of the offline test images). It holds the pod's
// namespaces open, reaps orphans, and exits 0 on SIGINT/SIGTERM.
package main

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGCHLD)
	for s := range sigs {
		if s == unix.SIGCHLD {
			for {
				pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
