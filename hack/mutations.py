#!/usr/bin/env python3
"""Re-introduces, one at a time, each lifecycle defect issue 10 found on the
stop-6 code into today's code and checks that its unit test (through the
runsc seam, with runscfake) fails. Restores every file afterwards.

  hack/mutations.py          # needs `make modfile` first
"""
import os, shutil, subprocess, sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# (defect, file, [(old, new), ...], test)
M = [
    ("exec start racing its container's exit: no state check (double close)", "runtime/exec.go",
     [("_, err = e.to(runtime.RunningStatus)", "e.status, err = runtime.RunningStatus, nil")],
     "TestExecStartRacesContainerExit"),
    ("a failed record write skips the exit (wedged Wait)", "runtime/exit.go",
     [('\tif err := t.persist(); err != nil {\n\t\tlog.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task exit")\n\t}',
       "\tif err := t.persist(); err != nil {\n\t\treturn\n\t}")],
     "TestRecordWriteFailureDoesNotWedge"),
    ("an unreadable task record is removed", "runtime/recover.go",
     [('\t\t\t\tl.WithError(err).Error("unreadable task record; leaving the task and its container untouched")\n',
       '\t\t\t\tl.WithError(err).Error("unreadable task record; leaving the task and its container untouched")\n\t\t\t\tremoveContainerFiles(ctx, r.sandboxes.Runsc(), td.Name(), dir)\n')],
     "TestRecoveryKeepsUnreadableRecord"),
    ("an unreadable sandbox record's sandbox is killed", "sandbox/recover.go",
     [("\t\t\tc.keepCorrupt(ctx, id, path, err)", "\t\t\tkillProcesses(ctx, id, SandboxProcessTree(c.runsc, id, 0))")],
     "TestCorruptRecordKeptNotReady"),
    ("any runsc state error at recovery is an exit", "runtime/recover.go",
     [("case err != nil && !errors.Is(err, runsc.ErrNotExist):", "case false:")],
     "TestRecoveryStateErrorIsNotExit"),
    ("an exit seen before the OOM event reads 255, no OOM", "runtime/exit.go",
     [("\tif t.sb.Killed() {", "\tif false {")],
     "TestSandboxOOMBeforeExit"),
    ("a gVisor-shim style root sandbox is not watched", "sandbox/handle.go",
     [("\tpidfd, err := unix.PidfdOpen(int(pid), 0)\n", "\tpidfd, err := unix.PidfdOpen(int(pid), 0)\n\tif true {\n\t\treturn\n\t}\n")],
     "TestShimStyleSandboxOOMKilled"),
    ("a create failing after runsc create leaks stdio fds", "runtime/create.go",
     [("\t\t\tif t.releaseIO != nil {\n\t\t\t\tt.releaseIO()\n\t\t\t}\n\t\t\tt.unparkTTY", "\t\t\tt.unparkTTY")],
     "TestCreateFailureLeaksNothing"),
    ("two Deletes publish two TaskDelete events", "runtime/task.go",
     [("func (t *Task) delete(ctx context.Context) (_ *runtime.Exit, retErr error) {\n\tt.op.Lock()\n\tdefer t.op.Unlock()",
       "func (t *Task) delete(ctx context.Context) (_ *runtime.Exit, retErr error) {")],
     "TestDeleteRacesDelete"),
    ("pause is not persisted", "runtime/task.go",
     [('\tif err := t.persist(); err != nil {\n\t\tlog.G(ctx).WithError(err).WithField("container", t.id).Warn("persist task")\n\t}\n\tif pause {',
       "\tif pause {")],
     "TestPauseSurvivesRestart"),
    ("PluginInfo caches its first error", "runtime/runtime.go",
     [("\tif features == nil {\n", "\tif pluginInfoErr != nil {\n\t\tr.featuresMu.Unlock()\n\t\treturn nil, pluginInfoErr\n\t}\n\tif features == nil {\n"),
      ("\t\t\tr.featuresMu.Unlock()\n\t\t\treturn nil, err", "\t\t\tr.featuresMu.Unlock()\n\t\t\tpluginInfoErr = err\n\t\t\treturn nil, err"),
      ("// rootTask returns", "var pluginInfoErr error\n\n// rootTask returns")],
     "TestPluginInfoRetriesAfterError"),
    ("an illegal transition reaches runsc", "runtime/task.go",
     [("\tif err := t.checkStatus(verb, from); err != nil {\n\t\treturn err\n\t}", "\t_ = from")],
     "TestIllegalTransitions"),
]

failed = 0
for defect, path, edits, test in M:
    src = open(path).read()
    mutated = src
    for old, new in edits:
        if old not in mutated:
            print(f"NO MATCH  {defect}: {old[:50]!r}")
            failed += 1
            break
        mutated = mutated.replace(old, new, 1)
    else:
        shutil.copy(path, path + ".orig")
        try:
            open(path, "w").write(mutated)
            pkg = next("./" + d + "/" for d in ("runtime", "sandbox", "sandbox/runsc")
                       if subprocess.run(["grep", "-qs", "func " + test + "(", *[os.path.join(d, f) for f in os.listdir(d) if f.endswith("_test.go")]]).returncode == 0)
            r = subprocess.run(["go", "test", "-modfile=_output/go.mod", "-count=1", "-timeout", "120s",
                                "-run", "^" + test + "$", pkg], capture_output=True, text=True)
        finally:
            shutil.move(path + ".orig", path)
        build = "[build failed]" in r.stdout + r.stderr
        caught = r.returncode != 0 and not build
        if not caught:
            failed += 1
        print(f"{'caught' if caught else 'BUILD FAILED' if build else 'MISSED'}  {test}: {defect}")
sys.exit(1 if failed else 0)
