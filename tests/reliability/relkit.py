"""Helpers of the reliability tests: the runtime as a subprocess with its error
output checked, bundles on one shared busybox rootfs, the lane's budgets, and the
figures the lane reports.

Every container gets ``cgroupsPath /reliability-<tag>/<id>`` (this run's own
prefix) and the leak-check tag in ``process.env`` (see tests/leakcheck.py), so the
leak checker finds its processes wherever they end up.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
REPO = os.path.dirname(TESTS)
for _p in (TESTS, os.path.join(REPO, "tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import leakcheck  # noqa: E402
from support import wait_for  # noqa: E402,F401 - the tests take it from here

TAG = leakcheck.install_tag()
RUNTIME = os.environ.get("RUNTIME_BIN") or os.path.join(os.path.dirname(sys.executable), "runtime")
#: the long lane (scripts/reliability) sets RELIABILITY_LONG=1
LONG = os.environ.get("RELIABILITY_LONG", "") not in ("", "0")
CGROUP_PREFIX = f"/reliability-{TAG[3:11]}"
BASE = f"/tmp/reliability-{TAG[3:11]}"

#: what an error line must never contain: Python leaking through the CLI (a traceback,
#: the CLI's catch-all for bugs, an unwrapped OSError, an exception class name)
PYTHON_LEAKS = re.compile(r"Traceback|internal error|\[Errno \d+\]|"
                          r"\b(?:[A-Z][a-z]+)+(?:Error|Exception)\b")


def budget(fast, long):
    return long if LONG else fast


# -- figures --------------------------------------------------------------------------
class Figures:
    """Counters and measurements the lane prints at the end (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.data = {}

    def add(self, key, n=1):
        with self.lock:
            self.data[key] = self.data.get(key, 0) + n

    def put(self, key, value):
        with self.lock:
            self.data[key] = value

    def peak(self, key, value):
        with self.lock:
            self.data[key] = max(self.data.get(key, 0), value)


FIGURES = Figures()


# -- the runtime ----------------------------------------------------------------------
class Result:
    def __init__(self, argv, rc, out, err, elapsed):
        self.argv, self.rc, self.out, self.err, self.elapsed = argv, rc, out, err, elapsed

    def __repr__(self):
        return (f"<{' '.join(self.argv[3:])!r} rc={self.rc} ({self.elapsed * 1000:.0f} ms) "
                f"stderr={self.err!r} stdout={self.out[:300]!r}>")

    @property
    def error(self):
        return self.err.strip()


class Rt:
    """``runtime --root ROOT --log LOG --log-format json``: with a log file the CLI
    prints only the error message on stderr (warnings go to the file)."""

    def __init__(self, root, log=None, binary=RUNTIME):
        self.root = str(root)
        self.log = str(log) if log else os.path.join(os.path.dirname(self.root), "runtime.log")
        self.binary = binary

    def argv(self, *args):
        return [self.binary, "--root", self.root, "--log", self.log, "--log-format", "json",
                *[str(a) for a in args]]

    def __call__(self, *args, timeout=60, check=False, input=None):
        argv = self.argv(*args)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            t0 = time.monotonic()
            try:
                proc = subprocess.run(argv, stdout=out, stderr=err, timeout=timeout,
                                      stdin=subprocess.DEVNULL if input is None else None,
                                      input=input)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = None  # hung: the caller reports it
            elapsed = time.monotonic() - t0
            out.seek(0)
            err.seek(0)
            res = Result(argv, rc, out.read().decode(errors="replace"),
                         err.read().decode(errors="replace"), elapsed)
        if rc is None:
            raise AssertionError(f"runtime {' '.join(map(str, args))} hung for {timeout}s: {res}")
        if check and rc != 0:
            raise AssertionError(f"runtime {' '.join(map(str, args))} failed: {res}")
        return res

    def popen(self, *args, **kw):
        """Start a command; its output goes to files (a created container keeps its
        stdio open, so pipes would never see EOF)."""
        out = tempfile.TemporaryFile()
        err = tempfile.TemporaryFile()
        proc = subprocess.Popen(self.argv(*args), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, **kw)
        proc.files = (out, err)
        return proc

    @staticmethod
    def collect(proc, timeout=60):
        """Wait for a ``popen`` and return its Result."""
        t0 = time.monotonic()
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        out, err = proc.files
        out.seek(0)
        err.seek(0)
        res = Result(proc.args, rc, out.read().decode(errors="replace"),
                     err.read().decode(errors="replace"), time.monotonic() - t0)
        out.close()
        err.close()
        return res

    def state(self, cid):
        res = self("state", cid)
        check_error(res)
        return json.loads(res.out) if res.rc == 0 else None

    def ids(self):
        res = self("list", "-q")
        check_error(res)
        assert res.rc == 0, res
        return res.out.split()

    def force_delete_all(self):
        """Delete every container left under the root; return their ids."""
        left = self.ids() if os.path.isdir(self.root) else []
        for cid in left:
            self("delete", "--force", cid)
        return left


def check_error(res, allowed=None):
    """A failed command reports exactly one line on stderr, without Python in it;
    ``allowed``: substrings one of which the line must contain."""
    if res.rc == 0:
        return
    err = res.err
    assert err.endswith("\n") and err.count("\n") == 1, \
        f"expected one error line on stderr: {res}"
    bad = PYTHON_LEAKS.search(err)
    assert bad is None, f"Python leaks through the error line ({bad and bad.group()!r}): {res}"
    if allowed is not None:
        assert any(a in err for a in allowed), f"unexpected error (want one of {allowed}): {res}"


def assert_ok(res):
    assert res.rc == 0, res
    return res


# -- bundles --------------------------------------------------------------------------
_rootfs_lock = threading.Lock()
_rootfs = None


def shared_rootfs():
    """A busybox rootfs for every container of the run (absolute root.path)."""
    global _rootfs
    with _rootfs_lock:
        if _rootfs is None:
            import mkbundle

            path = os.path.join(BASE, "rootfs")
            if not os.path.isdir(os.path.join(path, "bin")):
                mkbundle.make_rootfs(path)
            _rootfs = path
        return _rootfs


def make_config(cid, args=("sleep", "1000"), namespaces=None):
    import mkbundle

    config = mkbundle.make_config(list(args))
    config["root"]["path"] = shared_rootfs()
    config["linux"]["cgroupsPath"] = f"{CGROUP_PREFIX}/{cid}"
    config["process"]["env"].append(leakcheck.tag_env())
    if namespaces is not None:
        config["linux"]["namespaces"] = [{"type": t} for t in namespaces]
        kinds = set(namespaces)
        if "uts" not in kinds:
            config.pop("hostname", None)
        if "mount" not in kinds:
            config["mounts"] = []
            config["linux"].pop("maskedPaths", None)
            config["linux"].pop("readonlyPaths", None)
    return config


def write_bundle(parent, cid, config=None, data=None, **kw):
    """A bundle directory holding config.json (a dict, or raw bytes in ``data``)."""
    path = os.path.join(str(parent), f"bundle-{cid}")
    os.makedirs(path, exist_ok=True)
    if data is None:
        data = json.dumps(config if config is not None else make_config(cid, **kw)).encode()
    with open(os.path.join(path, "config.json"), "wb") as f:
        f.write(data)
    return path


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


# -- small process helpers ----------------------------------------------------------------
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def children_of(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def zombies_of(pid):
    out = []
    for child in children_of(pid):
        try:
            with open(f"/proc/{child}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if data[data.rfind(b")") + 2:][:1] == b"Z":
            out.append(child)
    return out




def kill_quietly(proc):
    try:
        proc.send_signal(signal.SIGKILL)
    except OSError:
        pass
