"""What the tests share: the runtime under test, busybox bundles, helpers, and the
leak check that ends every run that started containers (tests/conftest.py makes
the fixtures of this module visible to pytest; tests import helpers from here).

The runtime binary is ``$RUNTIME_BIN`` or the ``runtime`` console script next to
the Python running the tests.  Containers get cgroupsPath ``/<PREFIX>/<id>`` so that
the run touches no other cgroup; at session end nothing may be left under PREFIX, no
new mount may remain in the host's table and no process may remain in a test cgroup.
"""

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))

import mkbundle  # noqa: E402

RUNTIME = os.environ.get("RUNTIME_BIN") or os.path.join(os.path.dirname(sys.executable), "runtime")
PREFIX = f"runtime-test-{uuid.uuid4().hex[:8]}"
CGROUP_ROOT = "/sys/fs/cgroup"


def pytest_addoption(parser):
    parser.addoption("--runtime-binary", default=None, metavar="PATH",
                     help="runtime binary driven by podman and containerd in the e2e tests "
                          "(default: $E2E_RUNTIME or /usr/sbin/runc)")


class Runtime:
    """``runtime --root <tmp>`` as a callable: returns CompletedProcess (text)."""

    def __init__(self, root, binary=RUNTIME, log=None):
        self.root = str(root)
        self.binary = binary
        self.log = log

    def argv(self, *args):
        argv = [self.binary, "--root", self.root]
        if self.log:
            argv += ["--log", str(self.log), "--log-format", "json"]
        return argv + [str(a) for a in args]

    def __call__(self, *args, check=True, input=None, timeout=60, **kw):
        # Files, not pipes: a created container holds its stdio open, so waiting for
        # EOF on a pipe would wait for the container.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kw.setdefault("stdout", out)
            kw.setdefault("stderr", err)
            if input is None:
                kw.setdefault("stdin", subprocess.DEVNULL)
            proc = subprocess.run(self.argv(*args), input=input.encode() if input else None,
                                  timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            res = subprocess.CompletedProcess(proc.args, proc.returncode,
                                              out.read().decode(errors="replace"),
                                              err.read().decode(errors="replace"))
        if check and res.returncode != 0:
            raise AssertionError(f"runtime {' '.join(map(str, args))} failed ({res.returncode}):\n"
                                 f"{res.stderr}{res.stdout}")
        return res

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def ids(self):
        return self("list", "-q").stdout.split()


class Bundle:
    """A busybox bundle whose config can be edited before use."""

    def __init__(self, path, cid):
        self.path = str(path)
        self.id = cid
        self.rootfs = os.path.join(self.path, "rootfs")
        self.config = mkbundle.make_config(["true"])
        self.config["linux"]["cgroupsPath"] = f"/{PREFIX}/{cid}"

    @property
    def process(self):
        return self.config["process"]

    def args(self, *argv):
        self.config["process"]["args"] = list(argv)
        return self

    def sh(self, script):
        return self.args("sh", "-c", script)

    def write(self):
        mkbundle.write_config(self.path, self.config)
        return self

    def cgroup_dir(self, controller):
        return f"{CGROUP_ROOT}/{controller}/{PREFIX}/{self.id}"


_template = None


def _rootfs_template(tmp_path_factory):
    global _template
    if _template is None:
        _template = str(tmp_path_factory.mktemp("rootfs-template") / "rootfs")
        mkbundle.make_rootfs(_template)
    return _template


def _copy_rootfs(src, dst):
    """Hard links for files, so a rootfs costs milliseconds and no space."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = os.path.join(dst, rel)
        st = os.lstat(dirpath)
        os.makedirs(target, exist_ok=True)
        os.chmod(target, st.st_mode & 0o7777)
        os.chown(target, st.st_uid, st.st_gid)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            s = os.path.join(dirpath, name)
            d = os.path.join(target, name)
            if os.path.islink(s):
                os.symlink(os.readlink(s), d)
            else:
                os.link(s, d)


@pytest.fixture
def runtime(tmp_path):
    rt = Runtime(tmp_path / "state")
    yield rt
    leftover = rt.ids() if os.path.isdir(rt.root) else []
    for cid in leftover:
        rt("delete", "--force", cid, check=False)
    assert not leftover, f"test left containers behind: {leftover}"


def status_fields(text):
    """The "Key:\tvalue" lines of /proc/<pid>/status."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key and " " not in key:
            out[key] = value.strip()
    return out


PROBE_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration", "probes",
                         "probe.c")


@pytest.fixture(scope="session")
def probe(tmp_path_factory):
    """Path of the static probe binary (tests/integration/probes/probe.c) on the host."""
    import shutil

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the probe")
    out = str(tmp_path_factory.mktemp("probe") / "probe")
    subprocess.run([gcc, "-static", "-O2", "-o", out, PROBE_SRC], check=True,
                   capture_output=True)
    return out


@pytest.fixture
def make_bundle(tmp_path, tmp_path_factory, request):
    """make_bundle(name=None, parent=None) -> Bundle with a hard-linked busybox
    rootfs, in ``parent`` (default: the test's tmp_path)."""
    template = _rootfs_template(tmp_path_factory)
    count = [0]

    def make(name=None, parent=None):
        count[0] += 1
        cid = name or f"{request.node.name[:40]}-{count[0]}".replace("[", "-").replace("]", "")
        cid = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in cid)
        path = (tmp_path if parent is None else Path(parent)) / f"bundle-{count[0]}"
        _copy_rootfs(template, str(path / "rootfs"))
        return Bundle(path, cid)

    return make


@pytest.fixture
def bundle(make_bundle):
    return make_bundle()


def run(runtime, bundle, *extra, check=True, timeout=60, input=None, **kw):
    """``runtime run`` the bundle in the foreground; returns CompletedProcess.
    ``kw`` go to subprocess.run (e.g. ``umask``, ``env``)."""
    bundle.write()
    return runtime("run", "--bundle", bundle.path, *extra, bundle.id, check=check,
                   timeout=timeout, input=input, **kw)


# -- leak check ---------------------------------------------------------------------
def _mounts():
    with open("/proc/self/mountinfo") as f:
        return {" ".join(line.split()[3:5]) for line in f}


def _test_cgroups():
    found = []
    for ctrl in os.listdir(CGROUP_ROOT):
        base = os.path.join(CGROUP_ROOT, ctrl, PREFIX)
        if os.path.isdir(base):
            for dirpath, dirnames, _ in os.walk(base):
                found.append(dirpath)
    return found


def _test_processes():
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    continue  # dead, waiting for the host's init to reap it
            with open(f"/proc/{pid}/cgroup") as f:
                if f"/{PREFIX}/" in f.read():
                    pids.append(int(pid))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="session", autouse=True)
def leak_check():
    before = _mounts()
    yield
    problems = []
    procs = _test_processes()
    if procs:
        problems.append(f"processes still in test cgroups: {procs}")
        for pid in procs:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    # The prefix directories themselves are made by the first container of a run and
    # left when another container still used them; empty ones are removed here.
    leftovers = []
    for path in sorted(_test_cgroups(), key=len, reverse=True):
        try:
            os.rmdir(path)
        except OSError:
            leftovers.append(path)
        if path.rstrip("/").split("/")[-1] != PREFIX:
            leftovers.append(path)
    if leftovers:
        problems.append(f"cgroups left under /{PREFIX}: {sorted(set(leftovers))[:10]}")
    new_mounts = _mounts() - before
    if new_mounts:
        problems.append(f"mounts left on the host: {sorted(new_mounts)[:10]}")
    assert not problems, "leak check: " + "; ".join(problems)


# -- helpers for tests that look from inside the container ---------------------------
def output(runtime, bundle, *extra, timeout=60, input=None, **kw):
    """``run`` the bundle, require exit code 0 and return what it printed."""
    res = run(runtime, bundle, *extra, check=False, timeout=timeout, input=input, **kw)
    assert res.returncode == 0, f"container failed ({res.returncode}):\n{res.stderr}{res.stdout}"
    return res.stdout


def host_ns(kind, pid="self"):
    """The inode of a namespace (``/proc/<pid>/ns/<kind>``) as the host sees it."""
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


class MountEntry:
    """One line of /proc/<pid>/mountinfo."""

    def __init__(self, line):
        fields = line.split(" ")
        sep = fields.index("-")
        self.id, self.parent = int(fields[0]), int(fields[1])
        self.root = _unescape(fields[3])
        self.mountpoint = _unescape(fields[4])
        self.options = set(fields[5].split(","))
        self.optional = fields[6:sep]
        self.fstype = fields[sep + 1]
        self.source = fields[sep + 2]
        self.super_options = set(fields[sep + 3].split(",")) if len(fields) > sep + 3 else set()

    @property
    def propagation(self):
        """"shared", "slave", "shared,slave", "unbindable" or "private"."""
        kinds = [t.split(":")[0] for t in self.optional]
        out = [k for k, tag in (("shared", "shared"), ("slave", "master")) if tag in kinds]
        if "unbindable" in kinds:
            out.append("unbindable")
        return ",".join(out) or "private"

    def __repr__(self):
        return f"<{self.fstype} {self.root} on {self.mountpoint} {sorted(self.options)}>"


def _unescape(path):
    return (path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def parse_mountinfo(text):
    """{mountpoint: MountEntry} of the mountinfo lines in ``text`` (the topmost
    mount wins); other lines are ignored."""
    mounts = {}
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) > 6 and parts[0].isdigit() and "-" in parts:
            entry = MountEntry(line)
            mounts[entry.mountpoint] = entry
    return mounts


def sections(text):
    """Split output made of ``=== name`` headers into {name: body}."""
    out = {}
    name = None
    for line in text.splitlines(keepends=True):
        if line.startswith("=== "):
            name = line[4:].strip()
            out[name] = ""
        elif name is not None:
            out[name] += line
    return out


def wait_for(predicate, timeout=10.0, interval=0.01, what="condition"):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_status(runtime, cid, status, timeout=10.0):
    wait_for(lambda: runtime.state(cid)["status"] == status, timeout,
             what=f"container {cid} to be {status}")


class Background:
    """A container created and started in the background, its stdout and stderr
    going to files: ``wait()`` for it to stop, ``output()`` to read them."""

    def __init__(self, runtime, bundle, tmp_path, *extra, start=True):
        self.runtime = runtime
        self.bundle = bundle
        self.out_path = os.path.join(str(tmp_path), f"{bundle.id}.out")
        self.err_path = os.path.join(str(tmp_path), f"{bundle.id}.err")
        bundle.write()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            res = runtime("create", "--bundle", bundle.path, *extra, bundle.id, check=False,
                          stdout=out, stderr=err)
        if res.returncode != 0:
            raise AssertionError(f"create {bundle.id} failed ({res.returncode}):\n{self.errors()}")
        self.pid = runtime.state(bundle.id)["pid"]
        if start:
            self.start()

    def start(self):
        self.runtime("start", self.bundle.id)

    def wait(self, timeout=10.0):
        wait_status(self.runtime, self.bundle.id, "stopped", timeout)
        return self

    def output(self):
        with open(self.out_path) as f:
            return f.read()

    def errors(self):
        with open(self.err_path) as f:
            return f.read()

    def delete(self):
        self.runtime("delete", "--force", self.bundle.id)


def cgroup_controllers():
    """The v1 hierarchies (and cgroup2) mounted under /sys/fs/cgroup."""
    return [c for c in os.listdir(CGROUP_ROOT)
            if not os.path.islink(os.path.join(CGROUP_ROOT, c))
            and os.path.isdir(os.path.join(CGROUP_ROOT, c))]


def assert_nothing_left(runtime, bundle):
    """After a failed create: no state directory, no cgroup, no process."""
    state_dir = os.path.join(runtime.root, bundle.id)
    assert not os.path.lexists(state_dir), f"state directory left: {os.listdir(state_dir)}"
    assert bundle.id not in runtime.ids()
    for ctrl in cgroup_controllers():
        path = bundle.cgroup_dir(ctrl)
        assert not os.path.exists(path), f"cgroup left: {path}"
    procs = [pid for pid in _test_processes() if _in_cgroup(pid, f"/{PREFIX}/{bundle.id}")]
    assert not procs, f"processes left in the container's cgroup: {procs}"


def _in_cgroup(pid, path):
    """The process is in cgroup ``path`` (or below it) of some hierarchy."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            own = [line.rstrip("\n").split(":", 2)[2] for line in f]
    except OSError:
        return False
    return any(p == path or p.startswith(path + "/") for p in own)


@pytest.fixture
def public_dir():
    """A fresh directory under /tmp that any uid can traverse (mode 0755), for
    bundles and bind sources used by user-namespace containers; removed after."""
    import shutil

    path = tempfile.mkdtemp(prefix="rt-int-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class ConsoleSocket:
    """The receiving end of ``--console-socket``: an AF_UNIX listener whose first
    connection delivers the pty master with SCM_RIGHTS."""

    def __init__(self, directory):
        import socket

        self.path = os.path.join(directory, "console.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.master = None

    def receive(self, timeout=10.0):
        """Accept the runtime's connection and return the master fd."""
        import array
        import socket

        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(timeout)
            fds = array.array("i")
            _, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        assert len(fds) == 1, f"expected one fd over the console socket, got {list(fds)}"
        self.master = fds[0]
        return self.master

    def close(self):
        self.sock.close()
        if self.master is not None:
            os.close(self.master)
            self.master = None


@pytest.fixture
def console_socket(public_dir):
    # public_dir: sun_path is limited to 108 bytes, pytest's tmp_path can be longer
    cs = ConsoleSocket(public_dir)
    yield cs
    cs.close()
