// Command nnp stands in for the Kubernetes e2e "nonewprivs" image's binary:
// installed setuid root, it prints the effective uid it runs with, which
// is 0 unless no_new_privs stopped the setuid bit.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
