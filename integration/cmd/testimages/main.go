// Command testimages writes the offline test images (busybox from Debian's
// busybox-static, and the shimless pause image) as one OCI archive for
// `ctr -n k8s.io images import`.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/shimless/shimless/integration/testimage"
)

func main() {
	busybox := flag.String("busybox", "/bin/busybox", "static busybox binary (Debian: busybox-static)")
	pause := flag.String("pause", "bin/shimless-pause", "shimless-pause binary")
	out := flag.String("o", "_output/images.tar", "output archive")
	flag.Parse()
	if err := run(*busybox, *pause, *out); err != nil {
		fmt.Fprintln(os.Stderr, "testimages:", err)
		os.Exit(1)
	}
}

func run(busyboxPath, pausePath, out string) error {
	bb, err := testimage.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("%w (install Debian's busybox-static)", err)
	}
	if !bytes.HasPrefix(bb, []byte("\x7fELF")) {
		return fmt.Errorf("%s is not an ELF binary", busyboxPath)
	}
	list, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w", busyboxPath, err)
	}
	var applets []string
	for s := bufio.NewScanner(bytes.NewReader(list)); s.Scan(); {
		applets = append(applets, s.Text())
	}
	pause, err := testimage.ReadFile(pausePath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	err = testimage.WriteArchive(f, []testimage.Image{
		testimage.BusyboxImage(bb, applets),
		testimage.PauseImage(pause),
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}
