"""Container operations on one runtime, each one whole runtime process."""

import json
import os
import time

from . import procmem
from .proc import CommandFailed, ExitWatch, wait_all

CLEANUP_BATCH = 256


class Ops:
    def __init__(self, spawner, bundles, peak_meter, exit_timeout=30.0):
        self.spawner = spawner
        self.peak_meter = peak_meter
        self.bundles = bundles
        self.exit_timeout = exit_timeout

    # -- raw commands ---------------------------------------------------------------

    def timed(self, rt, *args):
        """Run one runtime command that must succeed; return its Sample."""
        sample, _, _ = self.spawner.run(rt.argv(*args))
        return sample

    def try_run(self, rt, *args):
        """Run a command whose failure is acceptable; return its exit status."""
        _, _, status = self.spawner.run(rt.argv(*args), check=False)
        return status

    def capture(self, rt, *args, check=True):
        _, out, status = self.spawner.run(rt.argv(*args), capture=True, check=check)
        return out, status

    # -- container lifecycle --------------------------------------------------------

    def new(self, rt, tag, args):
        return self.bundles.new(rt, tag, args)

    def create(self, rt, c, watch=True):
        rt.live[c.cid] = c
        sample = self.timed(rt, "create", "--bundle", c.bundle, "--pid-file", c.pidfile, c.cid)
        self._after_start(rt, c, watch)
        return sample

    def create_peak(self, rt, c):
        """`create` under the PeakMeter (not timed); return its peak RSS in kB."""
        rt.live[c.cid] = c
        _, peak = self.peak_meter.run(rt.argv("create", "--bundle", c.bundle,
                                              "--pid-file", c.pidfile, c.cid))
        self._after_start(rt, c, False)
        return peak

    def run_detached(self, rt, c):
        rt.live[c.cid] = c
        sample = self.timed(rt, "run", "--detach", "--bundle", c.bundle,
                            "--pid-file", c.pidfile, c.cid)
        self._after_start(rt, c, True)
        return sample

    def run_foreground(self, rt, c):
        """`run ID` in the foreground; runc and crun delete the container on exit."""
        rt.live[c.cid] = c
        sample = self.timed(rt, "run", "--bundle", c.bundle, c.cid)
        out, status = self.capture(rt, "state", c.cid, check=False)
        if status == 0:  # the runtime kept it: remove it, outside the timing
            self.delete(rt, c, force=True)
            return sample, False
        rt.live.pop(c.cid, None)
        return sample, True

    def _after_start(self, rt, c, watch):
        try:
            c.read_pid()
        except (OSError, ValueError) as e:
            raise CommandFailed(rt.argv("create", c.cid), f"left no usable --pid-file ({e})")
        if watch:
            c.watch = ExitWatch(c.pid)

    def start(self, rt, c):
        return self.timed(rt, "start", c.cid)

    def wait_exit(self, rt, c):
        """Block until the container's init has exited; return the nanoseconds waited."""
        begin = time.perf_counter_ns()
        if c.watch is None:
            c.watch = ExitWatch(c.pid)
        if not c.watch.wait(self.exit_timeout):
            raise CommandFailed([rt.name, c.cid], f"init pid {c.pid} still running after "
                                f"{self.exit_timeout:.0f}s")
        c.watch = None
        return time.perf_counter_ns() - begin

    def delete(self, rt, c, force=False):
        args = ("delete", "--force", c.cid) if force else ("delete", c.cid)
        sample = self.timed(rt, *args)
        rt.live.pop(c.cid, None)
        if c.watch is not None:
            c.watch.close()
            c.watch = None
        return sample

    def state(self, rt, c):
        out, _ = self.capture(rt, "state", c.cid)
        return json.loads(out)

    def cgroup_members(self, rt, c):
        return procmem.cgroup_members(f"{rt.cgroup_parent}/{c.cid}")

    # -- teardown -------------------------------------------------------------------

    def cleanup(self, rt):
        """Remove every container this run still has on ``rt``, whatever its state:
        SIGKILL, wait for the inits to go, then `delete --force` (fast once stopped)."""
        leftovers = list(rt.live.values())
        for i in range(0, len(leftovers), CLEANUP_BATCH):
            batch = leftovers[i:i + CLEANUP_BATCH]
            for c in batch:
                if c.watch is None and c.pid:
                    c.watch = ExitWatch(c.pid)
                self.try_run(rt, "kill", c.cid, "KILL")
            wait_all([c.watch for c in batch if c.watch], self.exit_timeout)
            for c in batch:
                c.watch = None
                self.try_run(rt, "delete", "--force", c.cid)
                rt.live.pop(c.cid, None)

    def stray_state(self, rt):
        """Entries left in the runtime's state root (after cleanup: leaks)."""
        try:
            return sorted(os.listdir(rt.root))
        except FileNotFoundError:
            return []
