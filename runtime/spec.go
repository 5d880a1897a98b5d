package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shimless/shimless/sandbox"
)

// checkSpec applies the sandbox controller's rules to a container spec
// before runsc sees it. CRI has already filtered the pod's and the
// container's annotations through the handler's pod_annotations and
// container_annotations; what passed still meets shimless's own
// dev.gvisor.* policy here (no internal.*, bundles and flag overrides only
// when the plugin config allows them). Resources and sysctls get the same
// bounds as a pod's: CRI turns negative CRI values into huge unsigned ones.
func checkSpec(spec *specs.Spec, policy sandbox.AnnotationPolicy) error {
	if err := policy.CheckAll(spec.Annotations); err != nil {
		return err
	}
	return sandbox.ValidateSpecResources(spec)
}
