"""Runtimes, bundles, containers, isolation and leak checks.

Every test gets a TestCtx: its own directory under the run's base directory, its
own container ids and cgroupsPath under the run's cgroup prefix, and a cleanup
that always runs (kill, delete --force, kill leftover processes, remove host
mounts it made, remove its cgroups and files) and records whatever the runtime
left behind.
"""

import ctypes
import errno
import json
import os
import random
import re
import select
import shlex
import shutil
import signal
import socket
import string
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CGROUP_ROOT = "/sys/fs/cgroup"
BUSYBOX = os.environ.get("BUSYBOX", "/bin/busybox")
ROOTFS_MARKER = ".conformance-rootfs"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# configs declare 1.0.2: every runtime accepts it (crun 1.8 refuses other versions);
# cfg.ociVersion checks that later 1.x versions are accepted too.
CONFIG_VERSION = "1.0.2"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PASSWD = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n" \
         "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\ntty:x:5:\nusers:x:100:\nuser:x:1000:\nnogroup:x:65534:\n"


class Skip(Exception):
    """The test cannot judge its requirements here (host lacks a feature, ...)."""


class TestError(Exception):
    """An operation the test relies on failed; its unjudged requirements FAIL."""


# ---------------------------------------------------------------- small utils

def rand_suffix(n=6):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


_REAPED = {}


def reap_zombies():
    """Collect exited children (container processes are reparented to us)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _REAPED[pid] = status


def pid_alive(pid):
    if not pid:
        return False
    st = read(f"/proc/{pid}/stat")
    if st is None:
        return False
    state = st.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def my_children():
    me = os.getpid()
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = read(f"/proc/{d}/stat")
        if not st:
            continue
        rest = st.rsplit(")", 1)[1].split()
        if int(rest[1]) == me and rest[0] not in ("Z", "X"):
            kids.append(int(d))
    return kids


def wait_pid_exit(pid, timeout):
    """Wait until pid exits; return its wait status if it was our child, else None.
    Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    fd = None
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        fd = None
    try:
        while True:
            if pid in _REAPED:
                return _REAPED.pop(pid)
            try:
                p, status = os.waitpid(pid, os.WNOHANG)
                if p == pid:
                    return status
            except ChildProcessError:
                if not pid_alive(pid):
                    return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"pid {pid} still running after {timeout}s")
            if fd is not None:
                select.select([fd], [], [], min(left, 0.5))
            else:
                time.sleep(min(left, 0.02))
    finally:
        if fd is not None:
            os.close(fd)


def exit_code(status):
    """Shell-style code: exit status, or 128+signal."""
    if status is None:
        return None
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return None


def parse_mountinfo(text):
    out = []
    for line in (text or "").splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        if len(f) < 6 or len(r) < 2:
            continue
        out.append({
            "id": int(f[0]), "parent": int(f[1]), "dev": f[2],
            "root": unescape(f[3]), "mountpoint": unescape(f[4]),
            "opts": f[5].split(","), "optional": f[6:],
            "fstype": r[0], "source": unescape(r[1]),
            "super": r[2].split(",") if len(r) > 2 else [],
        })
    return out


def unescape(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts_at(mountinfo, path):
    """All mounts whose mount point is path (last one is the visible one)."""
    return [m for m in mountinfo if m["mountpoint"] == path]


def top_mount(mountinfo, path):
    ms = mounts_at(mountinfo, path)
    if not ms:
        return None
    # the visible one is the one no other mount at the same point sits on
    tops = [m for m in ms if not any(o["parent"] == m["id"] for o in ms)]
    return tops[-1] if tops else ms[-1]


def host_mounts_under(prefix):
    prefix = prefix.rstrip("/") + "/"
    return [m for m in parse_mountinfo(read("/proc/self/mountinfo", ""))
            if (m["mountpoint"] + "/").startswith(prefix)]


def cgroup_hierarchies():
    """(name, mountpoint, version) for every cgroup hierarchy of the host."""
    out = []
    for m in parse_mountinfo(read("/proc/self/mountinfo", "")):
        if m["fstype"] == "cgroup":
            names = [o for o in m["super"] if o not in ("rw", "ro")
                     and not o.startswith(("release_agent", "clone_children", "noprefix",
                                           "xattr", "cpuset_v2_mode", "nsdelegate"))]
            out.append((",".join(names) or os.path.basename(m["mountpoint"]),
                        m["mountpoint"], 1))
        elif m["fstype"] == "cgroup2":
            out.append(("unified", m["mountpoint"], 2))
    return out


def cgroup_mode():
    hs = cgroup_hierarchies()
    if any(v == 2 and mp == CGROUP_ROOT for _, mp, v in hs):
        return "v2"
    if any(v == 2 for _, _, v in hs):
        return "hybrid"
    return "v1"


def proc_cgroups(pid):
    """{controller: path} from /proc/PID/cgroup ('' key for the v2 line)."""
    out = {}
    for line in (read(f"/proc/{pid}/cgroup", "") or "").splitlines():
        _, ctrls, path = line.split(":", 2)
        if not ctrls:
            out[""] = path
        for c in ctrls.split(","):
            if c:
                out[c] = path
    return out


def parse_cgroup_text(text):
    out = {}
    for line in (text or "").splitlines():
        if line.count(":") < 2:
            continue
        _, ctrls, path = line.split(":", 2)
        if not ctrls:
            out[""] = path
        for c in ctrls.split(","):
            if c:
                out[c] = path
    return out


def v1_controller_dir(controller):
    """Mount point of the v1 hierarchy holding controller, or None."""
    for names, mp, v in cgroup_hierarchies():
        if v == 1 and controller in names.split(","):
            return mp
    return None


def kv(text):
    out = {}
    for line in (text or "").splitlines():
        if "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def status_fields(text):
    out = {}
    for line in (text or "").splitlines():
        if ":" in line:
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
    return out


def sections(text):
    """Split output made of '=== name' headers into {name: body}."""
    out, cur, buf = {}, None, []
    for line in (text or "").splitlines():
        if line.startswith("=== "):
            if cur is not None:
                out[cur] = "\n".join(buf)
            cur, buf = line[4:].strip(), []
        else:
            buf.append(line)
    if cur is not None:
        out[cur] = "\n".join(buf)
    return out


# ---------------------------------------------------------------- the runtime

class Runtime:
    """A runc-compatible runtime binary, called with runc's CLI."""

    def __init__(self, spec):
        label, sep, cmd = spec.partition("=")
        if not sep or "/" in label or " " in label:
            label, cmd = None, spec
        self.argv = shlex.split(cmd)
        exe = shutil.which(self.argv[0]) or self.argv[0]
        self.argv[0] = exe
        self.label = label or os.path.basename(self.argv[0])
        self.prefix = list(self.argv)
        self.wrapped = False
        if os.path.basename(exe) == "crun" and cgroup_mode() == "hybrid":
            # crun refuses hybrid hosts; hide the v2 mount in a private (slave) mount
            # namespace, as the project's notes describe.  Slave propagation keeps host
            # mount events visible while the umount stays local.
            self.prefix = ["unshare", "-m", "--propagation", "slave", "sh", "-c",
                           'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"'] \
                + self.argv
            self.wrapped = True

    def available(self):
        return os.path.exists(self.argv[0]) and os.access(self.argv[0], os.X_OK)

    def describe(self):
        try:
            out = subprocess.run(self.argv + ["--version"], capture_output=True, text=True,
                                 timeout=10).stdout
            return out.splitlines()[0] if out else "?"
        except Exception:
            return "?"

    def cmd(self, root, args, log=None):
        g = ["--root", root]
        if log:
            g += ["--log", log, "--log-format", "json"]
        return self.prefix + g + list(args)


# ---------------------------------------------------------------- a suite run

class RunEnv:
    """Everything one runtime's run owns: base dir, state root, cgroup prefix."""

    def __init__(self, runtime, probe_path, keep=False, verbose=False):
        self.runtime = runtime
        safe = re.sub(r"[^a-zA-Z0-9]", "", runtime.label)[:12] or "rt"
        self.tag = f"{safe}-{rand_suffix()}"
        self.base = f"/tmp/conformance-{self.tag}"
        self.root = os.path.join(self.base, "root")
        self.tests_dir = os.path.join(self.base, "t")
        self.template = os.path.join(self.base, "template")
        self.cgprefix = f"/conformance-{self.tag}"
        self.probe_src = probe_path
        self.keep = keep
        self.verbose = verbose
        self.leaks = []          # (test, description)
        self.seq = 0
        self.host_ns = {n: os.readlink(f"/proc/self/ns/{n}")
                        for n in ("mnt", "net", "uts", "ipc", "pid", "user", "cgroup", "time")
                        if os.path.exists(f"/proc/self/ns/{n}")}
        self.precreated = []
        self.features = None
        self.features_error = None

    # setup / teardown
    def setup(self):
        os.makedirs(self.base)
        os.chmod(self.base, 0o755)
        os.makedirs(self.root, mode=0o700)
        os.makedirs(self.tests_dir)
        os.chmod(self.tests_dir, 0o755)
        self._make_template()
        self._precreate_cgroups()

    def _make_template(self):
        root = os.path.join(self.template, "rootfs")
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
                  "root", "home/user", "var/run", "run", "mnt"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        shutil.copy2(BUSYBOX, os.path.join(root, "bin/busybox"))
        shutil.copy2(self.probe_src, os.path.join(root, "probe"))
        os.chmod(os.path.join(root, "probe"), 0o755)
        applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for a in applets:
            link = os.path.join(root, a.lstrip("/"))
            if a == "bin/busybox" or os.path.lexists(link):
                continue
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink("/bin/busybox", link)
        write(os.path.join(root, "etc/passwd"), PASSWD)
        write(os.path.join(root, "etc/group"), GROUP)
        write(os.path.join(root, ROOTFS_MARKER), "rootfs\n")
        os.chown(os.path.join(root, "home/user"), 1000, 1000)
        for dirpath, dirnames, _ in os.walk(self.template):
            os.chmod(dirpath, 0o1777 if dirpath.endswith("/rootfs/tmp") else 0o755)

    def _precreate_cgroups(self):
        """Our prefix exists before any test, so a test only ever sees its own leaf."""
        for names, mp, v in cgroup_hierarchies():
            d = mp + self.cgprefix
            try:
                os.mkdir(d)
            except FileExistsError:
                pass
            except OSError:
                continue
            self.precreated.append(d)
            if v == 1 and "cpuset" in names.split(","):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    val = read(os.path.join(mp, f), "").strip()
                    try:
                        write(os.path.join(d, f), val)
                    except OSError:
                        pass
            if v == 1 and "cpu" in names.split(",") and os.path.exists(
                    os.path.join(d, "cpu.rt_runtime_us")):
                # give our subtree a real-time budget so RT tests can ask for some
                try:
                    write(os.path.join(d, "cpu.rt_runtime_us"), "200000")
                except OSError:
                    pass

    def teardown(self):
        """Final leak check (recorded in self.final_leaks), then remove everything."""
        reap_zombies()
        final = []
        # processes still in our cgroups or still our children
        for d in self.precreated:
            for dirpath, _, files in os.walk(d):
                if "cgroup.procs" in files:
                    for p in (read(os.path.join(dirpath, "cgroup.procs"), "") or "").split():
                        final.append(f"process {p} still in cgroup {dirpath}")
                        try:
                            os.kill(int(p), signal.SIGKILL)
                        except OSError:
                            pass
        for d in os.listdir("/proc"):
            if d.isdigit() and self.cgprefix + "/" in (read(f"/proc/{d}/cgroup", "") or ""):
                final.append(f"process {d} ({(read(f'/proc/{d}/comm', '?') or '?').strip()}) "
                             f"still in a cgroup under {self.cgprefix}")
                try:
                    os.kill(int(d), signal.SIGKILL)
                except OSError:
                    pass
        for p in my_children():
            final.append(f"process {p} ({read(f'/proc/{p}/comm', '?').strip()}) still running")
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
        reap_zombies()
        # cgroups left under the prefix
        for d in self.precreated:
            subs = []
            for dirpath, dirnames, _ in os.walk(d, topdown=False):
                if dirpath != d:
                    subs.append(dirpath)
            for s in subs:
                final.append(f"cgroup {s} left behind")
                try:
                    os.rmdir(s)
                except OSError:
                    pass
            try:
                os.rmdir(d)
            except OSError as e:
                final.append(f"cannot remove cgroup prefix {d}: {e}")
        # state dirs
        if os.path.isdir(self.root):
            for e in os.listdir(self.root):
                final.append(f"state entry {self.root}/{e} left behind")
        # mounts: under our directory, or anywhere under /tmp naming this run
        for m in parse_mountinfo(read("/proc/self/mountinfo", "")):
            if m["mountpoint"].startswith("/tmp/") and self.tag in m["mountpoint"] + m["source"] \
                    and not (m["mountpoint"] + "/").startswith(self.base + "/"):
                final.append(f"mount {m['mountpoint']} ({m['fstype']}) left behind")
        for m in sorted(host_mounts_under(self.base), key=lambda m: -len(m["mountpoint"])):
            final.append(f"mount {m['mountpoint']} ({m['fstype']}) left behind")
            subprocess.run(["umount", "-l", m["mountpoint"]], capture_output=True)
        self.final_leaks = final
        if not self.keep and not host_mounts_under(self.base):
            shutil.rmtree(self.base, ignore_errors=True)

    def load_features(self):
        rt = self.runtime
        try:
            p = subprocess.run(rt.cmd(self.root, ["features"]), capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
        except Exception as e:  # noqa: BLE001
            self.features_error = str(e)
            return
        if p.returncode != 0:
            self.features_error = (p.stderr or p.stdout).strip()[:200] or f"exit {p.returncode}"
            return
        try:
            self.features = json.loads(p.stdout)
        except ValueError as e:
            self.features_error = f"features output is not JSON: {e}"


# ---------------------------------------------------------------- configs

def default_caps():
    return ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def base_config(args=("sh",)):
    """The shape of `runc spec` (busybox rootfs, no terminal)."""
    caps = default_caps()
    return {
        "ociVersion": CONFIG_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": [f"PATH={DEFAULT_PATH}", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": list(caps), "effective": list(caps),
                             "permitted": list(caps)},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def set_ns(config, types):
    config["linux"]["namespaces"] = [{"type": t} for t in types]


# ---------------------------------------------------------------- containers

class OpResult:
    def __init__(self, argv, rc, out, err, elapsed):
        self.argv, self.rc, self.out, self.err, self.elapsed = argv, rc, out, err, elapsed

    @property
    def ok(self):
        return self.rc == 0

    def brief(self):
        msg = (self.err or self.out or "").strip().splitlines()
        return f"exit {self.rc}" + (f": {msg[-1][:200]}" if msg else "")


class Container:
    def __init__(self, ctx, name, config=None, args=None, cid=None):
        self.ctx = ctx
        self.env = ctx.run
        self.name = name
        self.id = cid or f"{self.env.tag}-{ctx.slug}-{name}"
        self.dir = os.path.join(ctx.dir, name)
        self.bundle = os.path.join(self.dir, "bundle")
        self.rootfs = os.path.join(self.bundle, "rootfs")
        self.cgpath = f"{self.env.cgprefix}/{ctx.slug}-{name}"
        self.out_path = os.path.join(self.dir, "stdout")
        self.err_path = os.path.join(self.dir, "stderr")
        self.log_path = os.path.join(self.dir, "runtime-log.json")
        self.config = config if config is not None else base_config(args or ["true"])
        if "linux" in self.config and isinstance(self.config["linux"], dict):
            self.config["linux"].setdefault("cgroupsPath", self.cgpath)
        self.pid = None
        self.created = False
        self.create_result = None
        self.exit_status = None
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self._copy_rootfs()
        ctx.containers.append(self)

    def _copy_rootfs(self):
        src = os.path.join(self.env.template, "rootfs")
        os.makedirs(self.bundle)
        os.chmod(self.bundle, 0o755)

        def link_or_copy(s, d):
            base = os.path.basename(s)
            if base in ("busybox", "probe"):
                os.link(s, d)
            else:
                shutil.copy2(s, d)
        shutil.copytree(src, self.rootfs, symlinks=True, copy_function=link_or_copy)

    # helpers to touch the bundle
    def rootfs_path(self, p):
        return os.path.join(self.rootfs, p.lstrip("/"))

    def write_config(self):
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)

    # runtime operations
    def op(self, args, timeout=30, stdin=None, log=True, inherit_stdio=False, env=None,
           preexec_fn=None, pass_fds=(), cwd=None):
        rt = self.env.runtime
        argv = rt.cmd(self.env.root, args, self.log_path if log else None)
        t0 = time.monotonic()
        if inherit_stdio:
            # create: the container inherits these; never pipes (they'd block)
            with open(self.out_path, "ab") as o, open(self.err_path, "ab") as e:
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                     start_new_session=True, env=env, preexec_fn=preexec_fn,
                                     pass_fds=pass_fds, cwd=cwd)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(p)
                raise TestError(f"`{' '.join(args[:1])}` timed out after {timeout}s")
            return OpResult(argv, rc, "", read(self.err_path, "") or "", time.monotonic() - t0)
        try:
            p = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                               timeout=timeout, start_new_session=True, env=env,
                               preexec_fn=preexec_fn, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise TestError(f"`{' '.join(args[:1])}` timed out after {timeout}s")
        return OpResult(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)

    @staticmethod
    def _kill_group(p):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            p.wait(timeout=5)
        except Exception:  # noqa: BLE001
            pass

    def create(self, extra=(), write=True, timeout=30, console_socket=None, env=None,
               preexec_fn=None, pass_fds=(), cwd=None):
        if write:
            self.write_config()
        args = ["create", "--bundle", self.bundle]
        if console_socket:
            args += ["--console-socket", console_socket]
        args += list(extra) + [self.id]
        r = self.op(args, timeout=timeout, inherit_stdio=True, env=env, preexec_fn=preexec_fn,
                    pass_fds=pass_fds, cwd=cwd)
        self.create_result = r
        if r.ok:
            self.created = True
            st = self.state()
            if st and st.get("pid"):
                self.pid = st["pid"]
        return r

    def must_create(self, **kw):
        r = self.create(**kw)
        if not r.ok:
            raise TestError(f"create failed: {self.diag(r)}")
        return r

    def start(self, timeout=30, env=None):
        return self.op(["start", self.id], timeout=timeout, env=env)

    def must_start(self):
        r = self.start()
        if not r.ok:
            raise TestError(f"start failed: {self.diag(r)}")
        return r

    def state_op(self):
        return self.op(["state", self.id], log=False)

    def state(self):
        r = self.state_op()
        if not r.ok:
            return None
        try:
            return json.loads(r.out)
        except ValueError:
            return None

    def kill(self, sig="KILL", extra=()):
        return self.op(["kill"] + list(extra) + [self.id, str(sig)])

    def delete(self, force=False, env=None):
        return self.op(["delete"] + (["--force"] if force else []) + [self.id], env=env)

    def wait(self, timeout=15):
        """Wait for the container process to exit; returns shell-style exit code or None."""
        if not self.pid:
            st = self.state()
            self.pid = st.get("pid") if st else None
        if not self.pid:
            return None
        try:
            status = wait_pid_exit(self.pid, timeout)
        except TimeoutError:
            raise TestError(f"container process {self.pid} did not exit within {timeout}s; "
                            f"output so far: {self.stdout()[-300:]!r}")
        self.exit_status = exit_code(status)
        return self.exit_status

    def stdout(self):
        return read(self.out_path, "") or ""

    def stderr(self):
        return read(self.err_path, "") or ""

    def runtime_log(self):
        return read(self.log_path, "") or ""

    def diag(self, r=None):
        parts = []
        if r is not None:
            parts.append(r.brief())
        err = self.stderr().strip()
        if err and (r is None or err not in (r.err or "")):
            parts.append("stderr: " + err[-300:])
        log = self.runtime_log().strip().splitlines()
        errs = [l for l in log if '"error"' in l or "level=error" in l]
        if errs:
            parts.append("log: " + errs[-1][:300])
        return "; ".join(parts) if parts else "no diagnostics"

    def run_for(self, ctx, req, timeout=15):
        """create + start + wait; returns stdout, or None with ``req`` failed when
        create fails (one requirement of a test that checks several)."""
        r = self.create()
        if not r.ok:
            ctx.fail(req, f"create failed: {self.diag(r)[:200]}")
            return None
        self.must_start()
        self.wait(timeout)
        return self.stdout()

    def run(self, timeout=15):
        """create + start + wait; returns stdout. Raises TestError on failures."""
        self.must_create()
        self.must_start()
        self.wait(timeout)
        return self.stdout()

    # what is left of the container on the host
    def traces(self, include_state=True):
        found = []
        if include_state:
            r = self.state_op()
            if r.ok:
                found.append("`state` still answers for the id")
        if safe_id(self.id) and os.path.exists(os.path.join(self.env.root, self.id)):
            found.append(f"state dir {self.env.root}/{self.id} exists")
        for names, mp, v in cgroup_hierarchies():
            d = mp + self.cgpath
            if os.path.isdir(d):
                procs = (read(os.path.join(d, "cgroup.procs"), "") or "").split()
                found.append(f"cgroup {d} exists" + (f" with processes {procs}" if procs else ""))
        if self.pid and pid_alive(self.pid):
            found.append(f"container process {self.pid} alive")
        for m in host_mounts_under(self.dir):
            found.append(f"mount {m['mountpoint']} left")
        return found

    def cleanup(self):
        if self.created or (safe_id(self.id) and
                            os.path.exists(os.path.join(self.env.root, self.id))):
            try:
                self.op(["kill", self.id, "KILL"], timeout=15, log=False)
            except TestError:
                pass
            if self.pid:
                try:
                    wait_pid_exit(self.pid, 5)
                except TimeoutError:
                    pass
            try:
                self.op(["delete", "--force", self.id], timeout=30, log=False)
            except TestError:
                pass
        if self.pid and pid_alive(self.pid):
            try:
                os.kill(self.pid, signal.SIGKILL)
                wait_pid_exit(self.pid, 5)
            except (OSError, TimeoutError):
                pass


# ---------------------------------------------------------------- test context

class TestCtx:
    def __init__(self, run, test):
        self.run = run
        self.test = test
        run.seq += 1
        self.slug = f"{run.seq:03d}"
        self.dir = os.path.join(run.tests_dir, f"{self.slug}-{test.name}")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.containers = []
        self.results = {}
        self.host_mounts = []        # host mounts we made (unmounted in cleanup)
        self.cleanups = []           # callables
        self.cgroups_made = []
        self.notes = []

    # results
    def check(self, req, ok, detail=""):
        if req not in self.test.reqs:
            raise AssertionError(f"test {self.test.name} judges undeclared {req}")
        prev = self.results.get(req)
        if prev and prev[0] == "FAIL":
            return  # first failure wins
        if ok:
            if prev is None or prev[0] != "FAIL":
                self.results[req] = ("pass", detail)
        else:
            self.results[req] = ("FAIL", detail)

    def fail(self, req, detail):
        self.check(req, False, detail)

    def skip(self, req, reason):
        if req not in self.results:
            self.results[req] = ("skip", reason)

    # factories
    def container(self, name="c", config=None, args=None, cid=None):
        return Container(self, name, config=config, args=args, cid=cid)

    def sh(self, script, mod=None, name="c", timeout=15, config=None):
        """Run `sh -c script` in a fresh container; returns (stdout, exit code, container)."""
        cfg = config if config is not None else base_config(["/bin/sh", "-c", script])
        if config is not None:
            cfg["process"]["args"] = ["/bin/sh", "-c", script]
        c = self.container(name, config=cfg)
        if mod:
            mod(c.config, c)
        out = c.run(timeout=timeout)
        return out, c.exit_status, c

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def op(self, args, timeout=30):
        """A runtime call not tied to a container (missing ids, unknown ids...)."""
        argv = self.run.runtime.cmd(self.run.root, args, self.path("runtime-log.json"))
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise TestError(f"`{' '.join(args[:1])}` timed out after {timeout}s")
        return OpResult(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)

    def shared(self, c, name="shared", dest="/shared"):
        """A host directory bind-mounted read-write into container c at dest."""
        d = self.mkdir(name, mode=0o777)
        os.makedirs(c.rootfs_path(dest), exist_ok=True)
        c.config["mounts"].append({"destination": dest, "type": "bind", "source": d,
                                   "options": ["rbind", "rw"]})
        return d

    def mkdir(self, *p, mode=0o755):
        d = self.path(*p)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, mode)
        return d

    def host_mount(self, args, target):
        """mount(8) on the host under our dir; undone in cleanup."""
        os.makedirs(target, exist_ok=True)
        p = subprocess.run(["mount"] + args + [target], capture_output=True, text=True)
        if p.returncode != 0:
            raise TestError(f"host mount {args} {target}: {p.stderr.strip()}")
        self.host_mounts.append(target)
        return target

    def host_cmd(self, argv, check=True):
        p = subprocess.run(argv, capture_output=True, text=True)
        if check and p.returncode != 0:
            raise TestError(f"{' '.join(argv)}: {p.stderr.strip()}")
        return p

    def expect_no_traces(self, req, c, what):
        tr = c.traces()
        self.check(req, not tr, f"{what}; left behind: {', '.join(tr)}" if tr else what)
        return not tr

    def expect_create_error(self, req, c, what="", **kw):
        """create must fail and leave nothing behind (runtime.md#runtimeErrors)."""
        r = c.create(**kw)
        if r.ok:
            self.fail(req, f"create succeeded {what}".strip())
            return False
        tr = c.traces()
        if tr:
            self.fail(req, f"create failed ({r.brief()}) but left: {', '.join(tr)}")
            return False
        self.check(req, True, f"create refused: {c.diag(r)[:160]}")
        return True

    # cleanup
    def cleanup(self):
        leaks = []
        for c in reversed(self.containers):
            try:
                c.cleanup()
            except Exception as e:  # noqa: BLE001
                leaks.append(f"cleanup of {c.id} raised {e}")
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                leaks.append(f"cleanup step raised {e}")
        reap_zombies()
        # what the runtime left behind after delete --force
        for c in self.containers:
            if not safe_id(c.id):
                continue
            if os.path.exists(os.path.join(self.run.root, c.id)):
                leaks.append(f"state dir of {c.id} left after delete --force")
                shutil.rmtree(os.path.join(self.run.root, c.id), ignore_errors=True)
            left = []
            for names, mp, v in cgroup_hierarchies():
                d = mp + c.cgpath
                if os.path.isdir(d) and d not in self.cgroups_made:
                    left.append(names)
                    for p in (read(os.path.join(d, "cgroup.procs"), "") or "").split():
                        leaks.append(f"process {p} still in cgroup {d}")
                        try:
                            os.kill(int(p), signal.SIGKILL)
                        except OSError:
                            pass
            if left:
                leaks.append(f"cgroup {c.cgpath} left after delete --force in {len(left)} "
                             f"hierarchies ({', '.join(left)})")
        time.sleep(0.02 if not leaks else 0.2)
        reap_zombies()
        for names, mp, v in cgroup_hierarchies():
            for c in self.containers:
                d = mp + c.cgpath
                if os.path.isdir(d):
                    rmdir_tree(d)
        for d in self.cgroups_made:
            if os.path.isdir(d):
                rmdir_tree(d)
        for t in reversed(self.host_mounts):
            subprocess.run(["umount", "-l", t], capture_output=True)
        for m in sorted(host_mounts_under(self.dir), key=lambda m: -len(m["mountpoint"])):
            leaks.append(f"mount {m['mountpoint']} left on the host")
            subprocess.run(["umount", "-l", m["mountpoint"]], capture_output=True)
        for p in my_children():
            leaks.append(f"process {p} ({(read(f'/proc/{p}/comm', '?') or '?').strip()}) "
                         f"still running after cleanup")
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        reap_zombies()
        for l in leaks:
            self.run.leaks.append((self.test.name, l))
        if not self.run.keep and not host_mounts_under(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
        return leaks


def safe_id(cid):
    return bool(cid) and "/" not in cid and cid not in (".", "..")


def rmdir_tree(d):
    for dirpath, dirnames, _ in os.walk(d, topdown=False):
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


# ---------------------------------------------------------------- hooks

HOOK_SCRIPT = r"""#!/bin/sh
# conformance hook recorder: $1 names this invocation; REC is where to write.
n="$1"
d="$REC/$n"
mkdir -p "$d"
echo "$n" >> "$REC/order"
for a in "$0" "$@"; do printf '%s\n' "$a"; done > "$d/argv"
env > "$d/env"
cat > "$d/stdin"
for ns in mnt net uts ipc pid user cgroup; do
  echo "$ns $(readlink /proc/self/ns/$ns)"
done > "$d/ns"
test -e /.conformance-rootfs && echo yes > "$d/self-root-marker"
cat /proc/self/mountinfo > "$d/self-mountinfo" 2>/dev/null
pid=$(sed -n 's/.*"pid"[^0-9]*\([0-9][0-9]*\).*/\1/p' "$d/stdin")
if [ -n "$pid" ]; then
  echo "$pid" > "$d/pid"
  if [ -e "/proc/$pid" ]; then
    echo yes > "$d/pid-exists"
    test -e "/proc/$pid/root/.conformance-rootfs" && echo yes > "$d/pid-root-marker"
    tr '\0' ' ' < "/proc/$pid/cmdline" > "$d/pid-cmdline" 2>/dev/null
    cat "/proc/$pid/mountinfo" > "$d/pid-mountinfo" 2>/dev/null
    cat "/proc/$pid/cgroup" > "$d/pid-cgroup" 2>/dev/null
    for ns in mnt net uts ipc pid; do
      echo "$ns $(readlink /proc/$pid/ns/$ns)"
    done > "$d/pid-ns" 2>/dev/null
  fi
fi
if [ -n "$CHECK_PATH" ]; then
  test -e "$CHECK_PATH" && echo yes > "$d/check-path" || echo no > "$d/check-path"
fi
if [ -n "$HOOK_SLEEP" ]; then exec sleep "$HOOK_SLEEP"; fi
echo done > "$d/done"
exit ${HOOK_EXIT:-0}
"""


def parse_ns(text):
    out = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        out[k] = v.strip()
    return out


class HookRec:
    """Reads what the recorder hooks wrote."""

    def __init__(self, recdir):
        self.dir = recdir

    def order(self):
        return (read(os.path.join(self.dir, "order"), "") or "").split()

    def ran(self, n):
        return os.path.isdir(os.path.join(self.dir, n))

    def get(self, n, f):
        return read(os.path.join(self.dir, n, f))

    def state(self, n):
        s = self.get(n, "stdin")
        if s is None:
            return None
        try:
            return json.loads(s)
        except ValueError:
            return {"_raw": s}

    def ns(self, n):
        return parse_ns(self.get(n, "ns"))

    def env(self, n):
        return [l for l in (self.get(n, "env") or "").splitlines() if l]

    def argv(self, n):
        return (self.get(n, "argv") or "").splitlines()


class Hooks:
    """Builds hook entries for a container; records land in ctx dir rec/."""

    def __init__(self, ctx, c):
        self.ctx = ctx
        self.c = c
        self.rec = ctx.mkdir("rec", mode=0o777)
        self.script = os.path.join(ctx.mkdir("hooks"), "hook.sh")
        write(self.script, HOOK_SCRIPT, 0o755)
        # a copy inside the rootfs, for hooks whose path resolves in the container
        self.cscript_rel = "/conformance-hooks/hook.sh"
        os.makedirs(c.rootfs_path("/conformance-hooks"), exist_ok=True)
        write(c.rootfs_path(self.cscript_rel), HOOK_SCRIPT, 0o755)
        os.makedirs(c.rootfs_path("/rec"), exist_ok=True)
        c.config["mounts"].append({"destination": "/rec", "type": "bind", "source": self.rec,
                                   "options": ["rbind", "rw"]})
        self.reader = HookRec(self.rec)

    def entry(self, name, in_container=False, exit=0, extra_env=(), sleep=None, timeout=None,
              check_path=None, args=None):
        rec = "/rec" if in_container else self.rec
        path = self.cscript_rel if in_container else self.script
        env = [f"PATH={HOST_PATH}", f"REC={rec}", f"HOOK_EXIT={exit}"] + list(extra_env)
        if sleep:
            env.append(f"HOOK_SLEEP={sleep}")
        if check_path:
            env.append(f"CHECK_PATH={check_path}")
        h = {"path": path, "args": args or [path, name], "env": env}
        if timeout is not None:
            h["timeout"] = timeout
        return h

    def add(self, kind, name, **kw):
        h = self.entry(name, **kw)
        self.c.config.setdefault("hooks", {}).setdefault(kind, []).append(h)
        return h


# ---------------------------------------------------------------- console socket

class ConsoleSocket:
    """Listens where --console-socket points; receives the pty master fd."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.master = None

    def accept(self, timeout=20):
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            msg, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        if not fds:
            raise TestError("console socket got no fd")
        self.master = fds[0]
        for extra in fds[1:]:
            os.close(extra)
        return self.master

    def read_all(self, timeout=10, until_eof=True):
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    b = os.read(self.master, 65536)
                except OSError as e:
                    if e.errno == errno.EIO:
                        break
                    raise
                if not b:
                    break
                out += b
        return out.decode(errors="replace")

    def close(self):
        if self.master is not None:
            os.close(self.master)
            self.master = None
        self.sock.close()


def wait_for(cond, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


STATE_STATUSES = ("creating", "created", "running", "stopped")


def state_schema_problems(st):
    """Check a state document against state-schema.json (written out by hand)."""
    p = []
    if not isinstance(st, dict):
        return ["state is not a JSON object"]
    for k in ("ociVersion", "id", "status", "bundle"):
        if k not in st:
            p.append(f"missing {k}")
        elif not isinstance(st[k], str):
            p.append(f"{k} is not a string")
    if "status" in st and st["status"] not in STATE_STATUSES:
        p.append(f"status {st['status']!r} not in {STATE_STATUSES}")
    if "pid" in st and (not isinstance(st["pid"], int) or isinstance(st["pid"], bool)
                        or st["pid"] < 0):
        p.append(f"pid {st['pid']!r} is not a non-negative integer")
    if "annotations" in st and st["annotations"] is not None:
        a = st["annotations"]
        if not isinstance(a, dict) or any(not isinstance(k, str) or not k or
                                           not isinstance(v, str) for k, v in a.items()):
            p.append("annotations is not a map of non-empty strings to strings")
    elif "annotations" in st:
        p.append("annotations is null")
    return p
