# shellcheck shell=bash
# The tests of containerd v2.4.2's CRI integration suite
# (github.com/containerd/containerd/v2/integration, built as
# bin/cri-integration.test from build/cri-suite), sourced by
# hack/conformance.sh. Every Linux test of the suite is in exactly one list.

# Run against a CRI endpoint and a runtime handler: these are the suite's
# conformance part, run for every handler.
CRI_APPLICABLE=(
	TestAdditionalGids
	TestContainerConsumedStats
	TestContainerDrainExecIOAfterExit
	TestContainerEvents
	TestContainerLifecycleWithoutImageRef
	TestContainerListStats
	TestContainerListStatsWithIdFilter
	TestContainerListStatsWithSandboxIdFilter
	TestContainerListStatsWithIdSandboxIdFilter
	TestContainerLogWithoutTailingNewLine
	TestLongContainerLog
	TestContainerRestart
	TestFailedContainerRestart
	TestContainerStats
	TestContainerStopCancellation
	TestContainerStopSignals
	TestDefaultContainerStopSignal
	TestSharedPidMultiProcessContainerStop
	TestContainerSymlinkVolumes
	TestContainerSysfsStatsWithPrivilegedPod
	TestCreateContainerWithoutMetadata
	TestRunPodSandboxWithoutMetadata
	TestDuplicateName
	TestImageFSInfo
	TestPodHostname
	TestPodUserNS
	TestIssue10598
	TestUsernsVolumeCopyUp
	TestRuntimeHandler
	TestTruncIndex
	TestUpdateContainerResources_StatusUpdated
	TestUpdateContainerResources_MemoryLimit
	TestUpdateContainerResources_MemorySwap
	TestVolumeCopyUp
	TestVolumeOwnership
	TestPrivilegedContainerCgroupMountOptions
	TestImageVolumeBasic
	TestImageVolumeReusableAfterFailure
	TestImageVolumeCheckVolatileOption
	TestImageVolumeWithUserNamespace
	TestPodDualStack
	TestSandboxRemoveWithoutIPLeakage
)

# Applicable, but cannot run offline or on this host: skipped by name
# (go test -skip) and printed in the summary, with the reason.
declare -A CRI_NOT_RUN=(
	[TestSandboxRemoveWithoutIPLeakage]="looks for the pod IP in host-local's checkpoints under the host's /var/lib/cni; the runner keeps IPAM state in its private directory and leaves the host's CNI state alone"
)

# Not applicable: they restart containerd (-containerd-bin), kill or
# inject failpoints into shims, start their own containerd, need NRI
# plugins wired into the config, or use the default handler rather than
# -runtime-handler. Never run; listed so that every test is accounted for.
declare -A CRI_NOT_APPLICABLE=(
	[TestContainerdRestart]="restarts containerd"
	[TestContainerdRestartSandboxRecover]="restarts containerd, shim failpoints"
	[TestReload100Pods]="starts its own containerd (newCtrdProc)"
	[TestIssue10244LoopbackV2]="starts its own containerd"
	[TestIssue10467]="starts its own containerd"
	[TestOOMEventMonitor]="starts its own containerd from -build-dir"
	[TestRunContainerWithVolatileOption]="starts its own containerd"
	[TestRuntimeHandlerUnpackWithSnapshotLabels]="starts its own containerd, erofs handler"
	[TestUpgrade]="release upgrade: downloads the previous release"
	[TestIssue7496]="kills the shim process (shim pid)"
	[TestIssue7496_ShouldRetryShutdown]="shim failpoints"
	[TestKillShimPublishesTaskExitAndDeleteEvents]="kills the shim process"
	[TestKillShimPublishesTaskExitAndDeleteEventsForContainer]="kills the shim process"
	[TestKillShimPreservesExitStatusForMultipleContainers]="kills the shim process, -build-dir"
	[TestShutdownShimWhenPauseExitsBeforeWorkload]="shim internals, default handler"
	[TestContainerIOLeakAfterStartFailed]="shim internals (shim pid, its fds)"
	[TestContainerTTYLeakAfterExit]="shim internals (shim pid, its fds)"
	[TestFailFastWhenConnectShim]="dials a shim socket directly"
	[TestPodSandboxController_ShouldBackoffExitEventWhenFail]="shim failpoints (failpoint handler)"
	[TestRunPodSandboxWithSetupCNIFailure]="CNI failpoints (failpoint handler)"
	[TestRunPodSandboxWithShimStartFailure]="shim failpoints (failpoint handler)"
	[TestRunPodSandboxWithShimDeleteFailure]="shim failpoints, restarts containerd"
	[TestRunPodSandboxWithShimStartAndTeardownCNIFailure]="shim failpoints, restarts containerd"
	[TestRunPodSandboxAndTeardownCNISlow]="shim/CNI failpoints, restarts containerd"
	[TestSandboxStopWithNilCNIResult]="failpoint handler, restarts containerd"
	[TestImageVolumeSetupIfContainerdRestarts]="restarts containerd"
	[TestContainerCgroupWritable]="default handler (RunPodSandbox with \"\"), cgroup v2 only"
	[TestNriPluginSetup]="NRI plugins in the test process, NRI socket config"
	[TestNriPluginSynchronization]="NRI plugins"
	[TestNriMountInjection]="NRI plugins"
	[TestNriEnvironmentInjection]="NRI plugins"
	[TestNriAnnotationInjection]="NRI plugins"
	[TestNriLinuxDeviceInjection]="NRI plugins"
	[TestNriLinuxCpusetAdjustment]="NRI plugins"
	[TestNriLinuxMemsetAdjustment]="NRI plugins"
	[TestNriLinuxCpusetAdjustmentUpdate]="NRI plugins"
	[TestNriLinuxMemsetAdjustmentUpdate]="NRI plugins"
	[TestNriUpdatePodSandbox]="NRI plugins"
	[TestUpdatePodSandboxWithRestart]="NRI plugins, restarts containerd"
	[TestNriPluginContainerdRestart]="NRI plugins, restarts containerd"
	[TestNriPluginNetworkingSynchronization]="NRI plugins"
	[TestNriPluginNetworkingLifecycle]="NRI plugins"
	[TestContainerdImage]="pulls with the containerd client (no hosts.toml mirror: needs the network); image service, not a runtime handler"
	[TestContainerdImageInOtherNamespaces]="pulls with the containerd client (needs the network)"
	[TestContainerdSandboxImage]="checks the configured sandbox image is the upstream pause:3.10.2"
	[TestContainerdSandboxImagePulledOutsideCRI]="pulls with the containerd client (needs the network)"
	[TestImageLoad]="needs docker"
	[TestCRIImagePullTimeout]="runs its own registry and reconfigures image pull timeouts (containerd internals)"
)
