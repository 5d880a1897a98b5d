package sandbox

import (
	"fmt"
	"strings"

	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/errdefs"
)

// reservedIDs are names our own state layout uses where ids become path
// components: <state>/sandboxes/rootfs is the pause rootfs every sandbox
// shares (a sandbox "rootfs" would have its bundle there, and its cleanup
// would delete it), and runsc, sandboxes and tasks are the directories
// beside them.
var reservedIDs = map[string]bool{
	"rootfs":    true,
	"runsc":     true,
	"sandboxes": true,
	"tasks":     true,
}

// PrivateSandboxPrefix starts the id of the sandbox a standalone container
// runs in; the sandbox API cannot create ids with it.
const PrivateSandboxPrefix = "shimless-"

// ValidateID checks a sandbox or container id from a request before it is
// used in a path or an argv: containerd's identifier rules (non-empty, at
// most 76 characters, alphanumerics separated by single '.', '_' or '-', so
// no leading '-', no path separator, no "..") and none of the names our
// state layout reserves. The error is InvalidArgument and names the id.
func ValidateID(id string) error {
	if err := identifiers.Validate(id); err != nil {
		if id == "" {
			return fmt.Errorf("invalid id: must not be empty: %w", errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("invalid id %q: %w", id, err)
	}
	if reservedIDs[id] {
		return fmt.Errorf("invalid id %q: reserved by the runsc runtime's state layout: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

// validatePodID is ValidateID for ids given to the sandbox API, where the
// private-sandbox prefix is also reserved.
func validatePodID(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if strings.HasPrefix(id, PrivateSandboxPrefix) {
		return fmt.Errorf("invalid sandbox id %q: the prefix %q is reserved for standalone containers' sandboxes: %w", id, PrivateSandboxPrefix, errdefs.ErrInvalidArgument)
	}
	return nil
}

// validatePrivateID checks the id of a standalone container's sandbox:
// the prefix and a valid container id.
func validatePrivateID(id string) error {
	rest, ok := strings.CutPrefix(id, PrivateSandboxPrefix)
	if !ok {
		return fmt.Errorf("invalid private sandbox id %q: must start with %q: %w", id, PrivateSandboxPrefix, errdefs.ErrInvalidArgument)
	}
	return ValidateID(rest)
}

// validateKnownID accepts every id a sandbox of ours can have: a pod's,
// or a standalone container's private one (which may exceed the length
// limit by its prefix).
func validateKnownID(id string) error {
	if strings.HasPrefix(id, PrivateSandboxPrefix) {
		return validatePrivateID(id)
	}
	return ValidateID(id)
}
