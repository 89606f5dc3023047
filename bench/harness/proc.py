"""Spawning, timing and reaping whole processes.

Every runtime command is started with ``os.posix_spawn`` (no shell, no PATH search)
and collected with ``os.wait4``, so one call yields the wall time (perf_counter_ns
around spawn..reap), the CPU time and the peak RSS that the kernel reports for the
child.  The harness makes itself a child subreaper, like containerd's shim or conmon:
a container's init process, orphaned when ``create`` exits, becomes our child, its
pid cannot be reused before we reap it, and we reap it promptly (``reap_orphans``).
"""

import ctypes
import os
import select
import signal
import time
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36

# What every runtime command sees: no venv, no PYTHON* variables, no locale surprises.
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}

# Python ignores SIGPIPE and SIGXFSZ, and the harness may ignore SIGINT/SIGTERM while
# it cleans up: a spawned child gets the default actions back.
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Sample:
    """What one finished command cost."""

    wall_ns: int
    cpu_ns: int  # user + system time of the child and of the descendants it reaped
    # ru_maxrss of wait4: the largest peak among those same processes, but never below
    # the harness's own peak, which the child inherits before exec() (see PeakMeter)
    maxrss_kb: int


class CommandFailed(Exception):
    def __init__(self, argv, detail, stderr=""):
        self.argv = list(argv)
        self.detail = detail
        self.stderr = stderr
        super().__init__(self.__str__())

    def __str__(self):
        text = f"`{' '.join(self.argv)}` {self.detail}"
        err = self.stderr.strip()
        if err:
            text += ": " + err[-400:]
        return text


def describe_status(status):
    if os.WIFEXITED(status):
        return f"exited {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"status {status:#x}"


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_orphans():
    """Reap every zombie child: only call it when no spawned command is in flight."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def children():
    """Pids of our current children (orphans reparented to us included)."""
    me = os.getpid()
    pids = set()
    for tid in os.listdir(f"/proc/{me}/task"):
        try:
            with open(f"/proc/{me}/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            pass
    return pids


def _wait_readable(fd, timeout):
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if timeout is None else int(timeout * 1000)))


class Spawner:
    """Runs commands with stdin and stdout on /dev/null and stderr kept for errors."""

    def __init__(self, timeout=60.0, env=None):
        self.timeout = timeout
        self.env = dict(CLEAN_ENV if env is None else env)
        self._null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        # memfds, not pipes: a container started by `create` inherits stdio and may
        # keep it open forever, so nothing may wait for an EOF on them.
        self._err = os.memfd_create("bench-stderr")
        self._out = os.memfd_create("bench-stdout")

    def close(self):
        for fd in (self._null, self._err, self._out):
            os.close(fd)

    def run(self, argv, capture=False, check=True):
        """Run ``argv`` to completion; return (Sample, stdout text or None, status)."""
        out = self._out if capture else self._null
        for fd in (self._err, out) if capture else (self._err,):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        actions = [
            (os.POSIX_SPAWN_DUP2, self._null, 0),
            (os.POSIX_SPAWN_DUP2, out, 1),
            (os.POSIX_SPAWN_DUP2, self._err, 2),
        ]
        start = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, self.env, file_actions=actions,
                             setsigdef=_RESET_SIGNALS)
        pidfd = os.pidfd_open(pid)
        try:
            if not _wait_readable(pidfd, self.timeout):
                os.kill(pid, signal.SIGKILL)  # our own child
                os.wait4(pid, 0)
                raise CommandFailed(argv, f"timed out after {self.timeout:.0f}s", self._read(self._err))
            _, status, usage = os.wait4(pid, 0)
            end = time.perf_counter_ns()
        finally:
            os.close(pidfd)
        reap_orphans()
        sample = Sample(
            wall_ns=end - start,
            cpu_ns=round((usage.ru_utime + usage.ru_stime) * 1e9),
            maxrss_kb=usage.ru_maxrss,
        )
        if check and status != 0:
            raise CommandFailed(argv, describe_status(status), self._read(self._err))
        return sample, (self._read(out) if capture else None), status

    @staticmethod
    def _read(fd):
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0).decode(errors="replace") if size else ""


def own_peak_rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def find_gnu_time():
    """/usr/bin/time if it is GNU time (busybox's `time` reports %M four times too big)."""
    for path in ("/usr/bin/time",):
        if os.access(path, os.X_OK):
            try:
                with open(path, "rb") as f:
                    if b"GNU" in f.read():
                        return path
            except OSError:
                pass
    return None


class PeakMeter:
    """Peak RSS (ru_maxrss) of one command, without the harness in it.

    A child spawned by the harness starts as a copy of (or, with posix_spawn, shares)
    the harness's address space, and the kernel keeps the peak RSS across exec(): so
    wait4() here reports at least the harness's own peak (~14 MiB of Python).  GNU
    time, a small C program, forks the command from its own small address space and
    reports the child's ru_maxrss, which is then the command's own peak (and that of
    the descendants it reaped).  Without GNU time, the harness's wait4() figure is
    used and flagged.
    """

    def __init__(self, spawner, workdir):
        self.spawner = spawner
        self.gnu_time = find_gnu_time()
        self.outfile = os.path.join(workdir, "maxrss")

    def describe(self):
        if self.gnu_time:
            return f"ru_maxrss reported by GNU time ({self.gnu_time} -f %M)"
        return (f"wait4() ru_maxrss from the harness (GNU time not installed): values up "
                f"to the harness's own peak, {own_peak_rss_kb()} kB, are that floor")

    def run(self, argv):
        """Run ``argv``; return (Sample of the whole run, peak RSS in kB)."""
        if not self.gnu_time:
            sample, _, _ = self.spawner.run(argv)
            return sample, sample.maxrss_kb
        sample, _, _ = self.spawner.run([self.gnu_time, "-f", "%M", "-o", self.outfile,
                                         "--", *argv])
        with open(self.outfile) as f:
            return sample, int(f.read().split()[-1])


class ExitWatch:
    """Waits for processes that are not (necessarily) our children to exit.

    Open it while the process is known to be alive (e.g. right after ``create``):
    a pidfd pins the identity of the process, so a later reuse of the pid is harmless.
    """

    def __init__(self, pid):
        self.pid = pid
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._fd = None

    def wait(self, timeout):
        if self._fd is None:
            return True
        try:
            return _wait_readable(self._fd, timeout)
        finally:
            self.close()

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:  # if it was our child (we are a subreaper), collect it now
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass


def wait_all(watches, timeout):
    """Wait for every ExitWatch; return the pids still alive at the deadline."""
    deadline = time.monotonic() + timeout
    alive = []
    for watch in watches:
        left = max(0.0, deadline - time.monotonic())
        if not watch.wait(left):
            alive.append(watch.pid)
    return alive
