"""Helpers for the tests that create real cgroups (test_cgroups_live.py here and
tests/cgroup2/): a per-session prefix, forked helper processes, and cleanup that
checks nothing under the prefix is left."""

import errno
import mmap
import os
import re
import signal
import time
import traceback

import pytest

from runtime import cgroups

PREFIX = "/runtime-cgtest-" + os.urandom(4).hex()
ROOT = "/sys/fs/cgroup"
V2 = os.path.exists(ROOT + "/cgroup.controllers")


def hierarchy_roots():
    if V2:
        return [ROOT]
    host = cgroups.Host()
    roots = {mnt for mnt, _ in host.v1_mounts().values()}
    if host.hybrid_root:
        roots.add(host.hybrid_root)
    return sorted(roots)


def leftovers():
    return [r + PREFIX for r in hierarchy_roots() if os.path.exists(r + PREFIX)]


def force_remove(path):
    """Last-resort cleanup of a leaked test cgroup: kill its tasks, rmdir bottom-up."""
    for dirpath, dirnames, _ in os.walk(path, topdown=False):
        for _ in range(50):
            try:
                with open(dirpath + "/cgroup.procs") as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                if os.path.exists(dirpath + "/freezer.state"):
                    with open(dirpath + "/freezer.state", "w") as f:
                        f.write("THAWED")
                if os.path.exists(dirpath + "/cgroup.freeze"):
                    with open(dirpath + "/cgroup.freeze", "w") as f:
                        f.write("0")
                os.rmdir(dirpath)
                break
            except OSError as e:
                if e.errno == errno.ENOENT:
                    break
                time.sleep(0.02)


def nothing_left_fixture():
    """Module fixture: no leftovers before, none after (cleaned and reported)."""
    before = leftovers()
    assert not before, f"cgroups from an earlier run: {before}"
    yield
    left = leftovers()
    for path in left:
        force_remove(path)
    assert not left, f"cgroups left behind under {PREFIX}: {left}"


class Child:
    """A forked process that waits for ``go()``, then runs ``body(out_fd)`` and exits
    with its return value (99 on an exception)."""

    def __init__(self, body):
        r_go, self._w_go = os.pipe()
        self._r_out, w_out = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 99
            try:
                os.close(self._w_go)
                os.close(self._r_out)
                os.read(r_go, 1)
                code = body(w_out) or 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(r_go)
        os.close(w_out)
        self.status = None

    def go(self):
        os.write(self._w_go, b"g")
        os.close(self._w_go)
        self._w_go = None

    def read(self, n=4096):
        return os.read(self._r_out, n)

    def wait(self, timeout=60):
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"child {self.pid} still running")
            time.sleep(0.005)
        return self.status

    def exit_code(self, timeout=60):
        status = self.wait(timeout)
        return os.waitstatus_to_exitcode(status)

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()
        for fd in (self._w_go, self._r_out):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._w_go = self._r_out = None


class CgroupFactory:
    """Per-test managers under PREFIX/<test name>; torn down even on failure."""

    def __init__(self, name):
        self.base = PREFIX + "/" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.managers = []
        self.children = []
        self.extra_dirs = []

    def new(self, sub="ctr", **kw):
        m = cgroups.new_manager("cgtest", f"{self.base}/{sub}", **kw)
        self.managers.append(m)
        return m

    def child(self, body):
        c = Child(body)
        self.children.append(c)
        return c

    def start(self, body, resources=None, sub="ctr"):
        """A child in a new cgroup with ``resources`` set; returns (manager, child)."""
        m = self.new(sub)
        c = self.child(body)
        m.apply(c.pid)
        if resources:
            m.set(resources)
        return m, c

    def close(self):
        for c in self.children:
            c.kill()
        errors = []
        for m in reversed(self.managers):
            try:
                if m.frozen():
                    m.thaw()
                m.signal_all(signal.SIGKILL)
            except Exception:
                pass
            try:
                m.destroy()
            except Exception as e:
                errors.append(e)
        for d in reversed(self.extra_dirs):
            force_remove(d)
        if errors:
            raise errors[0]


@pytest.fixture
def cg(request):
    f = CgroupFactory(request.node.name)
    try:
        yield f
    finally:
        f.close()


class Counter:
    """A shared counter the child bumps and the parent reads."""

    def __init__(self):
        self.mem = mmap.mmap(-1, 8, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)

    def get(self):
        return int.from_bytes(self.mem[0:8], "little")

    def spin(self, _out):
        # a slice store, not struct.pack_into, which zeroes the buffer before it
        # writes: a reader could see 0
        n = 0
        while True:
            n += 1
            self.mem[0:8] = n.to_bytes(8, "little")


def busy(seconds):
    def body(out):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return 0
    return body


def hog(limit_mib=512, chunk_mib=4, hold=0):
    """Allocate and touch memory until killed; then hold it ``hold`` seconds and
    exit 0 (if never stopped)."""
    def body(out):
        chunks = []
        for _ in range(limit_mib // chunk_mib):
            b = bytearray(chunk_mib << 20)
            for i in range(0, len(b), 4096):
                b[i] = 1
            chunks.append(b)
        os.write(out, b"allocated")
        time.sleep(hold)
        return 0
    return body


def fork_until_refused(out):
    """Fork sleepers until fork fails; report how many were made."""
    made = 0
    while made < 64:
        try:
            pid = os.fork()
        except BlockingIOError:
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        made += 1
    os.write(out, str(made).encode())
    time.sleep(60)
    return 0


def opener(*paths):
    """Try to open each path read-write; write 'ok'/'EPERM'/... per path."""
    def body(out):
        res = []
        for p in paths:
            try:
                os.close(os.open(p, os.O_RDWR))
                res.append("ok")
            except OSError as e:
                res.append(errno.errorcode.get(e.errno, str(e.errno)))
        os.write(out, " ".join(res).encode())
        return 0
    return body


def killed_by(status, sig):
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig


def read(path):
    with open(path) as f:
        return f.read().strip()
