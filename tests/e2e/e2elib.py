"""Machinery for the end-to-end tests: a private podman and a private containerd that
drive the runtime under test, an argv-logging wrapper in front of it, and the cleanup
and leak accounting that make a run leave nothing behind.

Everything a run creates lives under one directory ``/tmp/e2e-XXXXXXXX`` (the
"token"); cgroups are created only below ``/<token>-podman``, ``/<token>-cri`` and the
containerd namespace ``<token>`` (ctr's default cgroup path is ``/<namespace>/<id>``).
"""

import json
import os
import pty
import re
import resource
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tomllib
import time

from support import wait_for  # noqa: F401 - the tests take it from here too

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "localhost/e2e-busybox:latest"
PAUSE_IMAGE = "localhost/e2e-pause:latest"
CRI_NAMESPACE = "k8s.io"
CGROUP_ROOT = "/sys/fs/cgroup"
TIMEOUT = 60

# podman passes no --root: the runtime keeps its state in its default root, which
# the runtime creates on first use and which is empty again once podman is done.
RUNTIME_DEFAULT_ROOTS = ("/run/runc", "/run/runtime", "/run/crun")

# Host paths the clients would use if our isolation leaked; they must look the same
# after a run as before it.
HOST_PATHS = (
    "/var/lib/containers", "/run/containers", "/run/libpod", "/var/lib/containerd",
    "/run/containerd", "/opt/containerd", "/etc/cni/net.d", "/var/lib/cni",
) + RUNTIME_DEFAULT_ROOTS


class CommandFailed(AssertionError):
    pass


def run(cmd, *, env=None, timeout=TIMEOUT, check=False, input=None, cwd=None):
    """Run ``cmd`` with captured text output; stdin is /dev/null unless ``input``."""
    kw = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    try:
        res = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                             timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise CommandFailed(f"timed out after {timeout}s: {cmd}\nstdout: {e.stdout}\n"
                            f"stderr: {e.stderr}") from None
    if check and res.returncode != 0:
        raise CommandFailed(f"{cmd} exited {res.returncode}\nstdout: {res.stdout}\n"
                            f"stderr: {res.stderr}")
    return res


def run_pty(cmd, *, env=None, timeout=TIMEOUT):
    """Run ``cmd`` with a pseudo-terminal as its stdin, stdout and stderr.

    Returns (exit code, everything written to the terminal as bytes)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(cmd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True)
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                proc.wait()
                raise CommandFailed(f"timed out after {timeout}s: {cmd}\noutput: {out!r}")
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every slave end is closed
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                # the client exited; drain what is left without blocking
                while select.select([master], [], [], 0.05)[0]:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        break
                    out += chunk
                break
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        os.close(master)
    return rc, bytes(out)




def last_error_msg(log_text):
    """The last ``level == error`` msg of a runtime's JSON log (as the shim reports it)."""
    msg = None
    for line in log_text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("level") == "error":
            msg = rec.get("msg")
    return msg


# ------------------------------------------------------------- docs/clients.md

DOCS = os.path.join(REPO, "docs", "clients.md")
DOC_BINARY = "/usr/local/bin/runtime"


def doc_snippet(name):
    """The fenced block that follows ``<!-- e2e-snippet: NAME -->`` in docs/clients.md."""
    with open(DOCS) as f:
        text = f.read()
    marker = f"<!-- e2e-snippet: {name} -->"
    at = text.index(marker) + len(marker)
    start = text.index("```", at)
    start = text.index("\n", start) + 1
    return text[start:text.index("```", start)]


def runtimeclass_handler():
    """``handler:`` of the RuntimeClass in docs/clients.md."""
    for line in doc_snippet("runtimeclass").splitlines():
        if line.startswith("handler:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("docs/clients.md: the RuntimeClass has no handler")


def merge(base, over):
    """Deep merge of two TOML-like dicts; ``over`` wins."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def _toml_key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def to_toml(d, prefix=()):
    """Enough TOML for our configs: scalars, lists, nested tables."""
    lines = []
    scalars = [(k, v) for k, v in d.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in d.items() if isinstance(v, dict)]
    if prefix and (scalars or not tables):
        lines.append("\n[" + ".".join(_toml_key(k) for k in prefix) + "]")
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars]
    for k, v in tables:
        lines.append(to_toml(v, prefix + (k,)))
    return "\n".join(lines) + ("\n" if not prefix else "")


# --------------------------------------------------------------------------- wrappers

ARGV_WRAPPER = """#!/bin/sh
# e2e argv logger: one line per call, tab-separated: pid, cwd, then every argument.
line="$$	$PWD"
for a in "$@"; do line="$line	$a"; done
printf '%s\\n' "$line" >> {log}
exec {real} "$@"
"""

# Not exec'ing: after a failed call, keep a copy of the runtime's --log file (the
# client deletes it) and of the stderr, so a test can compare them with what the client
# reports.  Only for calls meant to fail: the runtime's fd 2 is a file here, and a
# container it starts would inherit that instead of the client's stderr.
ERR_WRAPPER = """#!/bin/sh
# e2e error catcher: runs the runtime, and after a failure keeps its --log file.
out={dir}/call-$$
{real} "$@" 2> "$out.stderr"
rc=$?
cat "$out.stderr" >&2
if [ "$rc" -ne 0 ]; then
    log=
    prev=
    for a in "$@"; do
        case "$a" in --log=*) log="${{a#--log=}}" ;; esac
        [ "$prev" = "--log" ] && log="$a"
        prev="$a"
    done
    printf '%s\\n' "$*" > "$out.argv"
    if [ -n "$log" ] && [ -f "$log" ]; then cp "$log" "$out.log"; fi
else
    rm -f "$out.stderr"
fi
exit $rc
"""


def parse_argv_log(path):
    """Records of the argv logger: dicts with pid, cwd and argv (list)."""
    calls = []
    try:
        with open(path) as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 2:
                    continue
                calls.append({"pid": int(fields[0]), "cwd": fields[1], "argv": fields[2:]})
    except FileNotFoundError:
        pass
    return calls


def split_global(argv):
    """Split a runtime argv into (global options, subcommand, subcommand args)."""
    i = 0
    glob = []
    takes_value = {"--root", "--log", "--log-format", "--criu", "--rootless"}
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            return glob, a, argv[i + 1:]
        glob.append(a)
        if a in takes_value:
            glob.append(argv[i + 1])
            i += 1
        i += 1
    return glob, None, []


# ------------------------------------------------------------------------ environment

class E2EEnv:
    """One test session's private world: wrappers, image, podman, containerd."""

    def __init__(self, runtime_binary):
        self.runtime_binary = runtime_binary
        while True:  # a name valid as a containerd namespace and a cgroup name
            self.base = f"/tmp/e2e-{secrets.token_hex(4)}"
            try:
                os.mkdir(self.base, 0o755)
                break
            except FileExistsError:
                continue
        self.token = os.path.basename(self.base)
        self.host_paths_before = {p: os.path.lexists(p) for p in HOST_PATHS}
        self.cgroup_prefixes = (f"{self.token}-podman", f"{self.token}-cri", self.token)
        self.podman_cgroup_parent = f"/{self.token}-podman"
        self.cri_cgroup_parent = f"/{self.token}-cri"
        self.ctd_proc = None
        self._seq = 0
        self.p = lambda *parts: os.path.join(self.base, *parts)

    def unique(self, prefix):
        self._seq += 1
        return f"{prefix}-{self._seq}"

    # -- wrappers -----------------------------------------------------------------
    def setup_wrappers(self):
        os.makedirs(self.p("bin"))
        os.makedirs(self.p("errbin"))
        os.makedirs(self.p("errcalls"))
        self.argv_log = self.p("argv.log")
        self.wrapper = self.p("bin", "runtime")
        self.err_wrapper = self.p("errbin", "runtime")
        self.err_dir = self.p("errcalls")
        with open(self.wrapper, "w") as f:
            f.write(ARGV_WRAPPER.format(log=shlex.quote(self.argv_log),
                                        real=shlex.quote(self.runtime_binary)))
        with open(self.err_wrapper, "w") as f:
            f.write(ERR_WRAPPER.format(dir=shlex.quote(self.err_dir),
                                       real=shlex.quote(self.runtime_binary)))
        os.chmod(self.wrapper, 0o755)
        os.chmod(self.err_wrapper, 0o755)

    def calls(self, containing=None):
        """Logged runtime calls, optionally only those with ``containing`` in argv."""
        calls = parse_argv_log(self.argv_log)
        if containing is not None:
            calls = [c for c in calls if containing in c["argv"]]
        return calls

    def error_calls(self):
        """Failed calls caught by the error wrapper: list of dicts (argv, stderr, log)."""
        out = []
        for name in sorted(os.listdir(self.err_dir)):
            if not name.endswith(".argv"):
                continue
            stem = os.path.join(self.err_dir, name[:-5])
            rec = {"argv": open(stem + ".argv").read().strip()}
            for ext in ("stderr", "log"):
                try:
                    rec[ext] = open(f"{stem}.{ext}").read()
                except FileNotFoundError:
                    rec[ext] = None
            out.append(rec)
        return out

    def clear_error_calls(self):
        for name in os.listdir(self.err_dir):
            os.unlink(os.path.join(self.err_dir, name))

    # -- image --------------------------------------------------------------------
    def setup_rootfs_tar(self):
        sys.path.insert(0, os.path.join(REPO, "tools"))
        try:
            import mkbundle
        finally:
            sys.path.pop(0)
        rootfs = self.p("rootfs")
        mkbundle.make_rootfs(rootfs)
        self.rootfs_tar = self.p("rootfs.tar")
        with tarfile.open(self.rootfs_tar, "w") as tar:
            tar.add(rootfs, arcname=".")
        shutil.rmtree(rootfs)

    # -- podman -------------------------------------------------------------------
    def setup_podman(self):
        for d in ("podman/root", "podman/run", "podman/tmp", "podman/volumes",
                  "podman/cni", "tmp"):
            os.makedirs(self.p(d), exist_ok=True)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = 1048576 if nofile == resource.RLIM_INFINITY else min(nofile, 1048576)
        # Isolation from the machine; then the documented snippet on top; then the
        # extra runtime names a few tests use.
        # ulimits: podman asks for nofile/nproc of 1048576 by default; where root lacks
        # CAP_SYS_RESOURCE and the hard limits are lower, setrlimit in the container
        # fails, so ask for what we can have.  podman itself lowers RLIMIT_NPROC of
        # conmon and the runtime (32768 here), hence a modest nproc.
        conf = {
            "containers": {
                "default_ulimits": [f"nofile={nofile}:{nofile}", "nproc=4096:4096"],
                "netns": "none",
                "log_driver": "k8s-file",
            },
            "engine": {
                "cgroup_manager": "cgroupfs",
                "events_logger": "file",
                "events_logfile_path": self.p("podman", "events.log"),
                "tmp_dir": self.p("podman", "tmp"),
                "static_dir": self.p("podman", "root", "libpod"),
                "volume_path": self.p("podman", "volumes"),
                "image_copy_tmp_dir": self.p("tmp"),
                "lock_type": "file",
            },
            "network": {
                "network_backend": "cni",
                "network_config_dir": self.p("podman", "cni"),
            },
        }
        snippet = tomllib.loads(doc_snippet("podman").replace(DOC_BINARY, self.wrapper))
        conf = merge(conf, snippet)
        engine = conf["engine"]
        assert engine["runtimes"]["runtime"] == [self.wrapper], "docs: podman snippet"
        engine["runtimes"].update({
            "runtime-nojson": [self.wrapper],
            "runtime-errlog": [self.err_wrapper],
            "runtime-errnojson": [self.err_wrapper],
        })
        engine["runtime_supports_json"].append("runtime-errlog")
        self.containers_conf = self.p("podman", "containers.conf")
        conf = to_toml(conf)
        with open(self.containers_conf, "w") as f:
            f.write(conf)
        storage_conf = self.p("podman", "storage.conf")
        with open(storage_conf, "w") as f:
            f.write(f"""\
[storage]
driver = "{os.environ.get('E2E_STORAGE_DRIVER', 'overlay')}"
graphroot = "{self.p('podman', 'root')}"
runroot = "{self.p('podman', 'run')}"
""")
        registries = self.p("podman", "registries.conf")
        with open(registries, "w") as f:
            f.write("unqualified-search-registries = []\n")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CONTAINER", "PODMAN", "REGISTRY_AUTH"))}
        env.update(CONTAINERS_CONF=self.containers_conf,
                   CONTAINERS_STORAGE_CONF=storage_conf,
                   CONTAINERS_REGISTRIES_CONF=registries,
                   TMPDIR=self.p("tmp"))
        self.podman_env = env

    def podman(self, *args, check=False, timeout=TIMEOUT, input=None):
        return run(["podman", *args], env=self.podman_env, check=check, timeout=timeout,
                   input=input)

    @property
    def podman_create_flags(self):
        """Flags every podman run/create gets: our cgroup parent, never pull."""
        return [f"--cgroup-parent={self.podman_cgroup_parent}", "--pull=never"]

    def import_images(self):
        """podman import the rootfs tar (and a pause image for CRI), then hand both to
        containerd as an OCI archive.  podman keeps a blob-info cache in
        /var/lib/containers/cache whatever the storage config says: remove it if it
        was not there before."""
        cache = "/var/lib/containers/cache"
        had = {p: os.path.lexists(p) for p in ("/var/lib/containers", cache)}
        try:
            self.podman("import", "--change", "CMD=/bin/sh", self.rootfs_tar, IMAGE,
                        check=True)
            self.podman("import", "--change", 'CMD=["/bin/sleep","2147483647"]',
                        self.rootfs_tar, PAUSE_IMAGE, check=True)
            self.podman("save", "--format", "oci-archive", "-o", self.p("busybox.tar"),
                        IMAGE, check=True)
            self.podman("save", "--format", "oci-archive", "-o", self.p("pause.tar"),
                        PAUSE_IMAGE, check=True)
        finally:
            if not had[cache] and os.path.isdir(cache):
                leftovers = set(os.listdir(cache)) - {"blob-info-cache-v1.boltdb"}
                if not leftovers:
                    shutil.rmtree(cache)
            if not had["/var/lib/containers"]:
                try:
                    os.rmdir("/var/lib/containers")
                except OSError:
                    pass

    # -- containerd ---------------------------------------------------------------
    def setup_containerd(self):
        d = self.p("ctd")
        for sub in ("root", "state", "opt", "runc", "fifo", "cni/bin", "cni/net.d",
                    "cri-runc", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.ctd_sock = os.path.join(d, "containerd.sock")
        self.ctd_ns = self.token
        self.ctd_runc_root = os.path.join(d, "runc")
        self.ctd_fifo = os.path.join(d, "fifo")
        self.ctd_config = os.path.join(d, "config.toml")
        self.cri_runc_root = os.path.join(d, "cri-runc")
        conf = {
            "version": 2,
            "root": f"{d}/root",
            "state": f"{d}/state",
            "temp": f"{d}/tmp",
            "grpc": {"address": self.ctd_sock},
            "ttrpc": {"address": self.ctd_sock + ".ttrpc"},
            "debug": {"address": ""},
            "metrics": {"address": ""},
            "plugins": {
                "io.containerd.internal.v1.opt": {"path": f"{d}/opt"},
                "io.containerd.grpc.v1.cri": {
                    "sandbox_image": PAUSE_IMAGE,
                    "disable_tcp_service": True,
                    "stream_server_address": "127.0.0.1",
                    "stream_server_port": "0",
                    "enable_selinux": False,
                    # the sandbox asks for oom_score_adj -998; where root lacks
                    # CAP_SYS_RESOURCE only values >= containerd's own are allowed
                    "restrict_oom_score_adj": True,
                    "cni": {"bin_dir": f"{d}/cni/bin", "conf_dir": f"{d}/cni/net.d"},
                    "containerd": {"snapshotter": "overlayfs"},
                },
            },
        }
        snippet = tomllib.loads(doc_snippet("containerd").replace(DOC_BINARY, self.wrapper))
        conf = merge(conf, snippet)
        cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
        # the RuntimeClass in the docs must name the documented handler
        self.cri_handler = runtimeclass_handler()
        runtimes = cri["containerd"]["runtimes"]
        assert self.cri_handler in runtimes, \
            f"docs: RuntimeClass handler {self.cri_handler!r} is not in {sorted(runtimes)}"
        handler = runtimes[self.cri_handler]
        assert handler["runtime_type"] == "io.containerd.runc.v2"
        assert handler["options"]["BinaryName"] == self.wrapper, "docs: containerd snippet"
        handler["options"]["Root"] = self.cri_runc_root  # keep runc state in our dir
        with open(self.ctd_config, "w") as f:
            f.write(to_toml(conf))
        self.ctd_log = open(os.path.join(d, "containerd.log"), "w")
        self.ctd_proc = subprocess.Popen(
            ["containerd", "--config", self.ctd_config],
            stdin=subprocess.DEVNULL, stdout=self.ctd_log, stderr=subprocess.STDOUT,
            start_new_session=True)

        def up():
            if self.ctd_proc.poll() is not None:
                raise AssertionError("containerd exited: " + self.containerd_log_tail())
            return os.path.exists(self.ctd_sock) and \
                self.ctr("version", ns="default").returncode == 0
        wait_for(up, timeout=20, what="containerd to listen")
        self.ctr("images", "import", "--snapshotter", "overlayfs", self.p("busybox.tar"),
                 check=True)
        self.ctr("images", "import", "--snapshotter", "overlayfs", self.p("busybox.tar"),
                 ns=CRI_NAMESPACE, check=True)
        self.ctr("images", "import", "--snapshotter", "overlayfs", self.p("pause.tar"),
                 ns=CRI_NAMESPACE, check=True)

    def containerd_log_tail(self, n=40):
        try:
            with open(os.path.join(self.base, "ctd", "containerd.log")) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def ctr(self, *args, ns=None, check=False, timeout=TIMEOUT):
        return run(self.ctr_cmd(*args, ns=ns), check=check, timeout=timeout)

    def ctr_cmd(self, *args, ns=None):
        return ["ctr", "--address", self.ctd_sock, "--namespace", ns or self.ctd_ns, *args]

    def ctr_runtime_flags(self, binary=None):
        """Flags for `ctr run`: the runtime under test behind the argv logger."""
        return ["--runc-binary", binary or self.wrapper, "--runc-root", self.ctd_runc_root,
                "--fifo-dir", self.ctd_fifo, "--snapshotter", "overlayfs"]

    # -- teardown -----------------------------------------------------------------
    def teardown(self):
        """Remove everything the session made; return a list of leaks found."""
        problems = []
        if getattr(self, "podman_env", None):
            self._teardown_podman(problems)
        if self.ctd_proc is not None:
            self._teardown_containerd(problems)
        self._kill_our_processes(problems)
        self._unmount_ours(problems)
        self._remove_cgroups(problems)
        self._restore_host_paths(problems)
        problems += self.leaks()
        if problems or os.environ.get("E2E_KEEP"):
            print(f"\ne2e: kept {self.base} (argv.log, ctd/containerd.log) for inspection")
        else:
            shutil.rmtree(self.base, ignore_errors=True)
        return problems

    def _teardown_podman(self, problems):
        ps = self.podman("ps", "-a", "-q")
        if ps.stdout.strip():
            problems.append(f"podman containers left by tests: {ps.stdout.split()}")
            self.podman("rm", "-a", "-f", "-t", "0")
        self.podman("rmi", "-a", "-f")

    def _teardown_containerd(self, problems):
        nss = self.ctr("namespaces", "ls", "-q").stdout.split()
        for ns in nss:
            tasks = self.ctr("tasks", "ls", "-q", ns=ns).stdout.split()
            for t in tasks:
                if ns == self.ctd_ns:
                    problems.append(f"containerd task left by tests: {t}")
                self.ctr("tasks", "kill", "-a", "-s", "9", t, ns=ns)
                self.ctr("tasks", "rm", "-f", t, ns=ns)
            for c in self.ctr("containers", "ls", "-q", ns=ns).stdout.split():
                if ns == self.ctd_ns:
                    problems.append(f"containerd container left by tests: {c}")
                self.ctr("containers", "rm", c, ns=ns)
            images = self.ctr("images", "ls", "-q", ns=ns).stdout.split()
            if images:
                self.ctr("images", "rm", "--sync", *images, ns=ns)
            self.ctr("namespaces", "rm", ns, ns="default")
        self.ctd_proc.send_signal(signal.SIGTERM)
        try:
            self.ctd_proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            problems.append("containerd did not stop on SIGTERM within 15s")
            self.ctd_proc.kill()
            self.ctd_proc.wait()
        self.ctd_log.close()

    def _our_processes(self):
        """(pid, why) of every process that references our directory or our cgroups."""
        found = []
        me = os.getpid()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            pid = int(name)
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                with open(f"/proc/{pid}/cgroup") as f:
                    cg = f.read()
            except OSError:
                continue
            if self.base in cmd:
                found.append((pid, cmd))
                continue
            for line in cg.splitlines():
                path = line.split(":", 2)[-1]
                if any(path == "/" + p or path.startswith("/" + p + "/")
                       for p in self.cgroup_prefixes):
                    found.append((pid, f"{cmd} (cgroup {path})"))
                    break
        return found

    def _kill_our_processes(self, problems):
        procs = self._our_processes()
        if not procs:
            return
        for pid, what in procs:
            problems.append(f"process left behind: {pid} {what}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while self._our_processes() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _our_mounts(self):
        mounts = []
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                target = fields[4].replace("\\040", " ")
                if target == self.base or target.startswith(self.base + "/"):
                    mounts.append(target)
        return mounts

    def _unmount_ours(self, problems):
        mounts = self._our_mounts()
        for target in sorted(mounts, key=len, reverse=True):
            # the storage driver's private bind of its own home is expected to stay
            # until the store shuts down; anything else is a leak
            if not target.endswith("/podman/root/overlay"):
                problems.append(f"mount left behind: {target}")
            r = run(["umount", target])
            if r.returncode != 0:
                run(["umount", "-l", target])

    def _our_cgroups(self):
        """Top-level cgroup directories with one of our prefixes, in every hierarchy."""
        if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
            hierarchies = [CGROUP_ROOT]  # unified-only host
        else:
            try:
                hierarchies = [os.path.join(CGROUP_ROOT, h) for h in os.listdir(CGROUP_ROOT)]
            except OSError:
                return []
            hierarchies = [h for h in hierarchies if os.path.isdir(h) and not os.path.islink(h)]
        found = []
        for top in hierarchies:
            for p in self.cgroup_prefixes:
                path = os.path.join(top, p)
                if os.path.isdir(path):
                    found.append(path)
        return sorted(set(found))

    # Parents the clients create and keep: podman's <parent>/conmon, and the parents
    # themselves.  A container's own cgroup left below them was not removed by the
    # runtime's delete.
    EXPECTED_CGROUP_CHILDREN = {"conmon"}

    def _remove_cgroups(self, problems):
        stale = set()
        for top in self._our_cgroups():
            # children first; a cgroup that still has processes is a leak
            for root, dirs, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                for d in dirs:
                    path = os.path.join(root, d)
                    rel = os.path.relpath(path, os.path.dirname(top))
                    if root != top or d not in self.EXPECTED_CGROUP_CHILDREN:
                        stale.add(rel)
                    self._rmdir_cgroup(path, problems)
            self._rmdir_cgroup(top, problems)
        for rel in sorted(stale):
            problems.append(f"container cgroup left behind (not removed by delete): /{rel}")

    def _rmdir_cgroup(self, path, problems):
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            problems.append(f"cgroup {path} cannot be removed: {e}")

    def _restore_host_paths(self, problems):
        for root in RUNTIME_DEFAULT_ROOTS:
            if not self.host_paths_before.get(root):
                try:
                    os.rmdir(root)
                except FileNotFoundError:
                    pass
                except OSError:
                    problems.append(f"{root} (created during the run) is not empty: "
                                    f"{sorted(os.listdir(root))}")
        # containerd's shims and ctr create /run/containerd/{s,fifo} whatever the
        # config says; remove them when they are ours and empty.
        if not self.host_paths_before.get("/run/containerd"):
            for sub in ("s", "fifo", "runc"):
                try:
                    os.rmdir(os.path.join("/run/containerd", sub))
                except OSError:
                    pass
            try:
                os.rmdir("/run/containerd")
            except OSError:
                pass

    def leaks(self):
        problems = []
        for pid, what in self._our_processes():
            problems.append(f"process still alive: {pid} {what}")
        for m in self._our_mounts():
            problems.append(f"mount still present: {m}")
        for cg in self._our_cgroups():
            problems.append(f"cgroup still present: {cg}")
        for path, existed in self.host_paths_before.items():
            if not existed and os.path.lexists(path):
                problems.append(f"host path created outside the test dir: {path}")
        return problems


def find_python_with_grpc():
    """An interpreter that can import grpc: this one, or Debian's python3-grpcio."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.path.exists(exe):
            r = run([exe, "-c", "import grpc"], timeout=30)
            if r.returncode == 0:
                return exe
    return None


# ------------------------------------------------------------------ per-test helpers


class Podman:
    """podman for one test; every container it names is removed at the end."""

    def __init__(self, env):
        self.env = env
        self.names = []

    def __call__(self, *args, **kw):
        return self.env.podman(*args, **kw)

    def name(self):
        n = self.env.unique("pm")
        self.names.append(n)
        return n

    def run(self, *args, name=None, runtime=None, **kw):
        """`podman [--runtime R] run --name N <isolation flags> ARGS`."""
        name = name or self.name()
        pre = ["--runtime", runtime] if runtime else []
        return self.env.podman(*pre, "run", "--name", name,
                               *self.env.podman_create_flags, *args, **kw)

    def start_sleeper(self, trap="", name=None):
        """A detached container whose shell PID 1 waits for signals; TERM makes it
        exit 143 at once (a bare sleep as PID 1 would ignore it)."""
        name = name or self.name()
        script = f"trap 'exit 143' TERM; {trap} sleep 100000 & wait"
        self.run("-d", IMAGE, "sh", "-c", script, name=name, check=True)
        return name

    def inspect(self, name, fmt):
        return self.env.podman("inspect", "--format", fmt, name, check=True).stdout.strip()

    def container_id(self, name):
        return self.inspect(name, "{{.Id}}")

    def exists(self, name):
        return self.env.podman("container", "exists", name).returncode == 0

    def cleanup(self):
        left = [n for n in self.names if self.exists(n)]
        for n in left:
            self.env.podman("rm", "-f", "-t", "0", n)
        return left


class Ctr:
    """ctr for one test; every container it names is removed at the end."""

    def __init__(self, env):
        self.env = env
        self.ids = []

    def __call__(self, *args, **kw):
        return self.env.ctr(*args, **kw)

    def name(self):
        n = self.env.unique("ct")
        self.ids.append(n)
        return n

    def run(self, *args, id=None, binary=None, **kw):
        """`ctr run <runtime flags> ARGS`; ARGS must hold IMAGE ID CMD..."""
        return self.env.ctr("run", *self.env.ctr_runtime_flags(binary), *args, **kw)

    def start_sleeper(self, trap=""):
        cid = self.name()
        script = f"trap 'exit 143' TERM; {trap} sleep 100000 & wait"
        self.run("-d", IMAGE, cid, "sh", "-c", script, check=True)
        return cid

    def tasks(self):
        """{id: (pid, status)} from `ctr tasks ls`."""
        out = {}
        for line in self.env.ctr("tasks", "ls", check=True).stdout.splitlines()[1:]:
            f = line.split()
            if len(f) >= 3:
                out[f[0]] = (int(f[1]), f[2])
        return out

    def status(self, cid):
        return self.tasks().get(cid, (None, None))[1]

    def wait_status(self, cid, status, timeout=10):
        wait_for(lambda: self.status(cid) == status, timeout=timeout,
                 what=f"task {cid} to be {status}")

    def remove_task(self, cid):
        """`ctr tasks rm`: returns the exit code from its warning (0 if none)."""
        r = self.env.ctr("tasks", "rm", cid, check=True)
        m = re.search(r"exit with non-zero exit code (\d+)", r.stderr)
        return int(m.group(1)) if m else 0

    def containers(self):
        return self.env.ctr("containers", "ls", "-q", check=True).stdout.split()

    def cleanup(self):
        left = []
        tasks = self.tasks()
        existing = set(self.containers())
        for cid in self.ids:
            if cid in tasks:
                left.append(cid)
                self.env.ctr("tasks", "kill", "-a", "-s", "9", cid)
                self.env.ctr("tasks", "rm", "-f", cid)
            if cid in existing:
                if cid not in left:
                    left.append(cid)
                self.env.ctr("containers", "rm", cid)
        return left


def cgroup_file(pid, controller, filename):
    """Host path of ``filename`` in the ``controller`` cgroup of process ``pid``."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, ctrls, path in lines:
        if controller in ctrls.split(","):
            return os.path.join(CGROUP_ROOT, controller, path.lstrip("/"), filename)
    for hid, ctrls, path in lines:
        if hid == "0" and os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
            return os.path.join(CGROUP_ROOT, path.lstrip("/"), filename)
    raise AssertionError(f"no {controller} cgroup for pid {pid}")


def frozen(pid):
    """True/False from the freezer of ``pid``'s cgroup (v1 freezer or v2 cgroup.events)."""
    try:
        path = cgroup_file(pid, "freezer", "freezer.state")
        with open(path) as f:
            return f.read().strip() == "FROZEN"
    except AssertionError:
        path = cgroup_file(pid, "", "cgroup.events")
        with open(path) as f:
            return "frozen 1" in f.read()
