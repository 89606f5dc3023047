"""Known container-escape classes, each attempted from inside a real container.

- CVE-2019-5736: reopening a host binary through /proc/<pid>/exe of a process the
  runtime runs in the container (exec, a joined pid namespace, "#!/proc/self/exe").
- CVE-2016-9962 / CVE-2024-21626: a host fd (a directory) reaching the container,
  through another process's /proc/<pid>/fd, the container's own fds, or a cwd of
  /proc/self/fd/N.
- CVE-2021-30465: mount destinations that are, or race to become, symlinks out of
  the rootfs.
- The default config's confinement: masked and read-only paths, /proc/sys, /sys,
  device nodes, kernel modules, mount, ptrace.

The probe (tests/integration/probes/probe.c) is built with ``gcc -static`` and
copied into the bundles; their busybox is a private copy, not a hard link to the
host's, so that nothing a container writes can reach a host file by design.
"""

import ctypes
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import threading

import pytest

from support import (REPO, RUNTIME, Background, Runtime, assert_nothing_left, output, parse_mountinfo,
                      run, sections, wait_for)

pytestmark = pytest.mark.integration



def prepare(bundle, probe):
    """The probe at /probe and a private busybox in the bundle's rootfs."""
    shutil.copyfile(probe, os.path.join(bundle.rootfs, "probe"))
    os.chmod(os.path.join(bundle.rootfs, "probe"), 0o755)
    busybox = os.path.join(bundle.rootfs, "bin", "busybox")
    os.unlink(busybox)
    shutil.copy2("/bin/busybox", busybox)
    return bundle


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# The host files a CVE-2019-5736-style attack would overwrite: the interpreter that
# runs the runtime, its console script, the syscall layer that carries the exec
# helper, and the busybox the bundles are made from.
HOST_FILES = sorted({os.path.realpath(sys.executable), os.path.realpath(RUNTIME),
                     os.path.join(REPO, "runtime", "linux", "_sys.abi3.so"), "/bin/busybox"})


@pytest.fixture
def host_files_untouched():
    before = {p: _sha256(p) for p in HOST_FILES if os.path.exists(p)}
    yield before
    after = {p: _sha256(p) for p in before}
    assert after == before, "a host binary changed"


_root = os.stat("/")
HOST_ROOT = f"top={_root.st_dev}:{_root.st_ino}"      # as probe.c prints FOREIGN-DIR lines


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(" ".join(line.split()[3:5]) for line in f)


# -- the scanner: a container looking at every process the runtime runs in it ----------
class Scanner:
    """A container running ``probe scan``: until stopped it opens /proc/<pid>/exe,
    cwd, root and fd/* of every other process in its pid namespace and reports what
    leads out of the container (see probe.c)."""

    def __init__(self, runtime, bundle, tmp_path, host_secret):
        self.runtime, self.bundle = runtime, bundle
        self.tmp = os.path.join(bundle.rootfs, "tmp")
        bundle.args("/probe", "scan", "/tmp/stop", "/tmp/ready", host_secret)
        self.bg = Background(runtime, bundle, tmp_path)
        wait_for(lambda: os.path.exists(os.path.join(self.tmp, "ready")), what="the scanner")

    def finish(self):
        with open(os.path.join(self.tmp, "stop"), "w"):
            pass
        self.bg.wait(20)
        self.runtime("delete", self.bundle.id)
        report = {"findings": [], "seen": {}}
        for line in self.bg.output().splitlines():
            word = line.split(" ", 1)[0]
            if word == "seen":
                link, _, counts = line[5:].rpartition(" opened=")
                opened, denied = counts.split()[:2]
                report["seen"][link] = (int(opened), int(denied.split("=")[1]))
            elif word != "rounds":
                report["findings"].append(line)
        return report


@pytest.fixture
def host_secret(tmp_path):
    """A host file no container may read."""
    path = tmp_path / "host-secret"
    path.write_text("host-secret-contents\n")
    return str(path)


def scan_during_execs(runtime, bundle, probe, tmp_path, host_secret, count=8):
    """Scan while ``count`` execs run in the container, and a few of a
    "#!/proc/self/exe" script (the CVE-2019-5736 trigger)."""
    prepare(bundle, probe)
    with open(os.path.join(bundle.rootfs, "evil"), "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(os.path.join(bundle.rootfs, "evil"), 0o755)
    scanner = Scanner(runtime, bundle, tmp_path, host_secret)
    failed = []
    try:
        for i in range(count):
            # check=False: under the scanner's load an exec sometimes fails with
            # "protocol error: expected pid, got ready" (a race of the runtime's
            # exec protocol, reported separately); the scan is what is tested here
            res = runtime("exec", bundle.id, "true", check=False)
            if res.returncode != 0:
                failed.append(res.stderr)
            if i % 3 == 0:
                runtime("exec", bundle.id, "/evil", check=False)
    finally:
        report = scanner.finish()
    assert len(failed) < count / 2, failed
    return report




def test_exec_processes_expose_no_host_binary(runtime, bundle, probe, tmp_path, host_secret,
                                              host_files_untouched):
    report = scan_during_execs(runtime, bundle, probe, tmp_path, host_secret)
    # the scanner did look at the processes of the execs
    assert report["seen"], report
    exe = [f for f in report["findings"] if f.startswith(("FOREIGN-EXE", "MEMFD-EXE"))]
    assert exe == [], f"{len(exe)} host binaries opened through /proc/<pid>/exe: {exe[:3]}"


def test_exec_processes_expose_no_host_fd(runtime, bundle, probe, tmp_path, host_secret,
                                          host_files_untouched):
    report = scan_during_execs(runtime, bundle, probe, tmp_path, host_secret)
    leaks = [f for f in report["findings"] if not f.startswith(("FOREIGN-EXE", "MEMFD-EXE"))]
    assert not any(f.startswith("READ-HOST") for f in leaks), \
        f"the container read {host_secret} through a leaked fd: {leaks[:4]}"
    assert not [f for f in leaks if f.startswith("FOREIGN-DIR") and f.endswith(HOST_ROOT)], \
        f"host directories reached: {leaks[:4]}"
    assert leaks == [], f"{len(leaks)} host fds reached: {leaks[:4]}"


def test_init_joining_a_pid_namespace_is_not_reachable(runtime, make_bundle, probe, tmp_path,
                                                       host_secret, host_files_untouched):
    a = prepare(make_bundle(), probe)
    scanner = Scanner(runtime, a, tmp_path, host_secret)
    try:
        pid = runtime.state(a.id)["pid"]
        b = prepare(make_bundle(), probe)
        b.config["linux"]["namespaces"] = [
            ns if ns["type"] != "pid" else {"type": "pid", "path": f"/proc/{pid}/ns/pid"}
            for ns in b.config["linux"]["namespaces"]]
        b.args("true")
        for i in range(5):
            b.id = f"{a.id}-joiner-{i}"
            b.config["linux"]["cgroupsPath"] = a.config["linux"]["cgroupsPath"] + f"-j{i}"
            run(runtime, b)
    finally:
        report = scanner.finish()
    assert report["seen"]
    # The joiner's own root and files (its rootfs, its busybox: a private copy) are
    # visible through /proc/<pid>/, as with any process sharing a pid namespace;
    # what must not be reachable is the host.
    host = [f for f in report["findings"]
            if f.startswith(("MEMFD-EXE", "READ-HOST"))
            or f.startswith("FOREIGN-EXE") and f.split()[2] not in ("/bin/busybox", "/probe")
            or f.startswith("FOREIGN-DIR") and f.endswith(HOST_ROOT)]
    assert host == [], f"{len(host)} ways to the host: {host[:4]}"


@pytest.fixture(scope="module")
def own_interpreter(tmp_path_factory):
    """A runtime whose interpreter is a private copy of the host's (a venv made with
    --copies): once the runtime has exited nothing executes that copy, so an attacker
    holding it can really reopen it for writing, where the shared interpreter would
    answer ETXTBSY for as long as any Python on the host runs."""
    venv = tmp_path_factory.mktemp("own-python") / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--copies", "--without-pip", str(venv)],
                   check=True)
    python = venv / "bin" / "python3"
    assert not os.path.islink(python)
    site = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    main = venv / "bin" / "runtime-main.py"
    main.write_text(f"import sys\nsys.path[:0] = [{REPO!r}, {site!r}]\n"
                    "from runtime.cli import main\nmain()\n")
    launcher = venv / "bin" / "runtime"
    launcher.write_text(f'#!/bin/sh\nexec {python} -I {main} "$@"\n')
    launcher.chmod(0o755)
    return str(python), str(launcher)


@pytest.mark.parametrize("how", ["exec", "create-joining-its-pid-ns"])
@pytest.mark.parametrize("guard", [True, False], ids=["sealed", "unsealed-control"])
def test_interpreter_cannot_be_hijacked_with_cap_sys_ptrace(runtime, make_bundle, probe, tmp_path,
                                                           own_interpreter, guard, how):
    """CVE-2019-5736 through the runtime's own interpreter: a container granted
    CAP_SYS_PTRACE holds /proc/<pid>/exe of the Python processes the runtime runs
    in its pid namespace (those of `exec`, and the init of a container that joins
    that namespace while it is built), then, once no runtime runs, reopens each for
    writing.  The control (the re-exec through a read-only view switched off) shows
    that the attack does reach the interpreter without it."""
    python, launcher = own_interpreter
    bundle = prepare(make_bundle(), probe)
    caps = bundle.config["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind] = sorted(set(caps.get(kind, [])) | {"CAP_SYS_PTRACE"})
    bundle.args("/probe", "hijack", "/tmp/stop", "/tmp/ready")
    tmp = os.path.join(bundle.rootfs, "tmp")
    attacker = Background(runtime, bundle, tmp_path)
    try:
        wait_for(lambda: os.path.exists(os.path.join(tmp, "ready")), what="the attacker")
        own = Runtime(runtime.root, binary=launcher)
        env = dict(os.environ)
        if not guard:
            env["_RUNTIME_SEALED_EXE"] = "1"    # what a runtime without the guard does
        joiner = make_bundle()
        joiner.config["linux"]["namespaces"] = [
            ns if ns["type"] != "pid" else {"type": "pid", "path": f"/proc/{attacker.pid}/ns/pid"}
            for ns in joiner.config["linux"]["namespaces"]]
        joiner.args("true")
        joiner.write()
        for i in range(6):
            if how == "exec":
                res = own("exec", bundle.id, "true", env=env, check=False)
            else:
                joiner.id = f"{bundle.id}-joiner-{i}"
                joiner.config["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"] + f"-j{i}"
                res = run(own, joiner, env=env, check=False)
            assert res.returncode == 0, res.stderr
    finally:
        with open(os.path.join(tmp, "stop"), "w"):
            pass
        attacker.wait(20)
        runtime("delete", bundle.id)
    report = attacker.output().splitlines()
    # what the attacker held of the interpreter (other exes: the joiners' busybox)
    st = os.stat(python)
    interpreter = f"{st.st_dev}:{st.st_ino}"
    held = [line for line in report if line.startswith("HELD") and line.endswith(interpreter)]
    hijacks = [line for line in report if line.startswith("HIJACK") and interpreter in line]
    assert held, f"the attacker never saw a runtime process: {report}"
    won = [line for line in hijacks if line.endswith(" ok")]
    if guard:
        assert won == [], f"the container could write the runtime's interpreter: {won}"
        # the interpreter was reached only through its read-only view
        assert {h.split()[3] for h in hijacks} == {"EROFS"}, report
    else:
        assert won, f"control: the attack did not reach the unguarded interpreter: {report}"


F_GET_SEALS = 1034
SEALS = 0x1 | 0x2 | 0x4 | 0x8    # F_SEAL_SEAL, SHRINK, GROW, WRITE


def test_created_container_init_is_a_sealed_memfd(runtime, bundle, probe, tmp_path,
                                                  host_files_untouched):
    prepare(bundle, probe)
    bundle.args("true")
    bg = Background(runtime, bundle, tmp_path, start=False)
    try:
        pid = runtime.state(bundle.id)["pid"]
        exe = f"/proc/{pid}/exe"
        assert os.readlink(exe).startswith("/memfd:runtime-init")
        # sealed: even host root cannot change it once nothing executes it any more,
        # and while it runs the kernel refuses writable opens (ETXTBSY)
        fd = os.open(exe, os.O_RDONLY)
        try:
            seals = fcntl.fcntl(fd, F_GET_SEALS)
        finally:
            os.close(fd)
        assert seals & SEALS == SEALS
        with pytest.raises(OSError) as exc:
            os.close(os.open(exe, os.O_WRONLY))
        assert exc.value.errno in (errno.ETXTBSY, errno.EPERM)
        # from inside: a process exec'd into the created container tries the same
        res = runtime("exec", bundle.id, "/probe", "rewrite", "/proc/1/exe")
        assert res.stdout in ("rewrite: ETXTBSY\n", "rewrite: EPERM\n")
        res = runtime("exec", bundle.id, "sh", "-c", "readlink /proc/1/exe; echo x >> /proc/1/exe",
                      check=False)
        assert res.stdout.startswith("/memfd:runtime-init") and res.returncode != 0
        bg.start()
        bg.wait()
    finally:
        runtime("delete", "--force", bundle.id)


# -- CVE-2024-21626: no host fd, no host cwd -----------------------------------------------
# After the probe lists the fds, a shell climbs out from every fd number it could
# name, its own and pid 1's.
CLIMB_FDS = (
    'echo "cwd $(readlink /proc/self/cwd)"; '
    'r=$(stat -c %d:%i /); for n in $(seq 0 40); do for p in self 1; do '
    '(cd /proc/$p/fd/$n/.. 2>/dev/null && cd ../../../../../../../../.. && '
    '[ "$(stat -c %d:%i .)" != "$r" ] && echo "escape /proc/$p/fd/$n $(ls | head -3)"); '
    'done; done; true')
FD_REPORT = ["/probe", "fds", "sh", "-c", CLIMB_FDS]


def fd_report(text):
    fds = {}
    cwd = None
    escapes = []
    for line in text.splitlines():
        if line.startswith("fd "):
            _, n, kind, target = (line.split(" ", 3) + [""])[:4]
            fds[int(n)] = (kind, target)
        elif line.startswith("cwd "):
            cwd = line[4:]
        elif line.startswith("escape "):
            escapes.append(line)
    return fds, cwd, escapes


def _with_fds(argv, files):
    """argv run by a shell that opens ``files`` as fds 3, 4, ... first."""
    redirs = " ".join(f'{3 + i}<"{p}"' for i, p in enumerate(files))
    return ["sh", "-c", f'exec "$@" {redirs}', "sh"] + argv


@pytest.mark.parametrize("preserve", [0, 2])
def test_only_stdio_and_preserved_fds_reach_the_init(runtime, bundle, probe, tmp_path, preserve):
    prepare(bundle, probe)
    files = []
    for i in range(2):
        p = tmp_path / f"preserved-{i}"
        p.write_text(f"preserved {i}\n")
        files.append(str(p))
    bundle.args(*FD_REPORT)
    bundle.process["cwd"] = "/tmp"
    bundle.write()
    argv = runtime.argv("run", "--preserve-fds", preserve, "--bundle", bundle.path, bundle.id)
    res = subprocess.run(_with_fds(argv, files), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    fds, cwd, escapes = fd_report(res.stdout)
    assert sorted(fds) == list(range(3 + preserve)), fds
    for n in range(3, 3 + preserve):
        assert fds[n] == ("other", files[n - 3])
    assert not any(kind == "dir" for kind, _ in fds.values())
    assert cwd == "/tmp"
    assert escapes == []


@pytest.mark.parametrize("preserve", [0, 2])
def test_only_stdio_and_preserved_fds_reach_exec_processes(runtime, bundle, probe, tmp_path,
                                                           preserve):
    prepare(bundle, probe)
    files = []
    for i in range(2):
        p = tmp_path / f"preserved-{i}"
        p.write_text(f"preserved {i}\n")
        files.append(str(p))
    bundle.args("sleep", "30")
    Background(runtime, bundle, tmp_path)
    try:
        argv = runtime.argv("exec", "--preserve-fds", preserve, "--cwd", "/tmp", bundle.id,
                            *FD_REPORT)
        res = subprocess.run(_with_fds(argv, files), capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
    finally:
        runtime("delete", "--force", bundle.id)
    fds, cwd, escapes = fd_report(res.stdout)
    assert sorted(fds) == list(range(3 + preserve)), fds
    for n in range(3, 3 + preserve):
        assert fds[n] == ("other", files[n - 3])
    assert cwd == "/tmp"
    assert escapes == []


CLIMB = ('r=$(stat -c %d:%i /); cd ../../../../../../../../..; '
         'if [ "$(stat -c %d:%i .)" = "$r" ]; then echo inside; '
         'else echo "outside: $(ls | head -3)"; fi')


def test_process_cwd_through_proc_self_fd_stays_inside(runtime, make_bundle):
    """The cwd of the init is set while the runtime's own fds are open: a cwd of
    /proc/self/fd/N (runc's CVE-2024-21626) must fail or land in the container."""
    for cwd in [f"/proc/self/fd/{n}" for n in range(3, 12)] + \
               ["/proc/self/fd/3/..", "/proc/self/fd/4/../..", "/proc/1/fd/3", "/proc/self/cwd"]:
        b = make_bundle()
        b.process["cwd"] = cwd
        b.sh(CLIMB)
        res = run(runtime, b, check=False)
        if res.returncode == 0:
            assert res.stdout == "inside\n", f"cwd {cwd}: {res.stdout}"
        else:
            assert_nothing_left(runtime, b)


def test_exec_cwd_through_proc_self_fd_stays_inside(runtime, bundle, tmp_path):
    bundle.args("sleep", "30")
    Background(runtime, bundle, tmp_path)
    escaped = []
    try:
        for cwd in [f"/proc/self/fd/{n}" for n in range(3, 12)] + ["/proc/self/fd/3/.."]:
            res = runtime("exec", "--cwd", cwd, bundle.id, "sh", "-c", CLIMB, check=False)
            if res.returncode == 0 and res.stdout != "inside\n":
                escaped.append((cwd, res.stdout.strip()))
    finally:
        runtime("delete", "--force", bundle.id)
    assert escaped == []


# -- CVE-2021-30465: symlinked mount destinations ----------------------------------------------
@pytest.fixture
def host_target(public_dir):
    """A host directory that mounts must never reach, with one file in it."""
    target = os.path.join(public_dir, "host-target")
    os.mkdir(target)
    with open(os.path.join(target, "host-file"), "w") as f:
        f.write("host\n")
    return target


def test_symlink_mount_destinations_never_reach_the_host(runtime, bundle, host_target):
    os.symlink(host_target, os.path.join(bundle.rootfs, "abs"))
    os.symlink("../../../../../../../../.." + host_target, os.path.join(bundle.rootfs, "rel"))
    os.makedirs(os.path.join(bundle.rootfs, "d"))
    os.symlink("../../../../../../../../../..", os.path.join(bundle.rootfs, "d", "up"))
    bundle.config["mounts"] += [
        {"destination": "/abs", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/rel/made/below", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=2m"]},
        {"destination": "/d/up" + host_target + "/viaup", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=3m"]},
    ]
    before = host_mounts()
    bundle.sh("cat /proc/self/mountinfo; touch /abs/x /rel/made/below/y; true")
    mounts = parse_mountinfo(output(runtime, bundle))
    by_size = {next((o for o in m.super_options if o.startswith("size=")), ""): p
               for p, m in mounts.items() if m.fstype == "tmpfs"}
    # each link resolved inside the rootfs: the in-container path is the host path
    assert by_size["size=1024k"] == host_target
    assert by_size["size=2048k"] == host_target + "/made/below"
    assert by_size["size=3072k"] == host_target + "/viaup"
    assert os.listdir(host_target) == ["host-file"]
    assert host_mounts() == before
    # the links' target was made in the rootfs (the rest was made in the tmpfs on it)
    assert os.listdir(os.path.join(bundle.rootfs, host_target.lstrip("/"))) == []


def _renameat2():
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


RENAME_EXCHANGE = 2
AT_FDCWD = -100


def test_mount_destination_swapped_to_a_symlink_during_create(runtime, make_bundle, host_target,
                                                             public_dir):
    """A loop swaps a directory of the rootfs with a symlink to a host directory
    (absolute and relative) while containers mounting on it are created."""
    renameat2 = _renameat2()
    b = make_bundle()
    mnt = os.path.join(b.rootfs, "mnt")
    os.mkdir(os.path.join(mnt, "vol"))
    os.symlink(host_target, os.path.join(mnt, "abs-link"))
    os.symlink("../../../../../../../.." + host_target, os.path.join(mnt, "rel-link"))
    src = os.path.join(public_dir, "bind-src")
    os.mkdir(src)
    b.config["mounts"] += [
        {"destination": "/mnt/vol", "type": "bind", "source": src, "options": ["bind"]},
        {"destination": "/mnt/vol/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=2m"]},
    ]
    b.sh("cat /proc/self/mountinfo")
    stop = threading.Event()
    swaps = [0]

    def swapper():
        vol = os.path.join(mnt, "vol").encode()
        links = [os.path.join(mnt, n).encode() for n in ("abs-link", "rel-link")]
        while not stop.is_set():
            for link in links:
                # vol <-> link, and back: vol is a symlink half of the time
                renameat2(AT_FDCWD, vol, AT_FDCWD, link, RENAME_EXCHANGE)
                renameat2(AT_FDCWD, vol, AT_FDCWD, link, RENAME_EXCHANGE)
                swaps[0] += 2

    before = host_mounts()
    t = threading.Thread(target=swapper, daemon=True)
    t.start()
    outcomes = {"ok": 0, "failed": 0}
    base = b.id
    cgroup_parent = os.path.dirname(b.config["linux"]["cgroupsPath"])
    try:
        for i in range(30):
            b.id = f"{base}-{i}"
            b.config["linux"]["cgroupsPath"] = f"{cgroup_parent}/{b.id}"
            res = run(runtime, b, check=False, timeout=30)
            if res.returncode != 0:
                outcomes["failed"] += 1
                assert_nothing_left(runtime, b)
                continue
            outcomes["ok"] += 1
            mounts = parse_mountinfo(res.stdout)
            tmpfs = [p for p, m in mounts.items()
                     if m.fstype == "tmpfs" and "size=2048k" in m.super_options]
            # the tmpfs is in the container (its path in there, wherever the link led)
            assert tmpfs and all(p.startswith(("/mnt/", host_target)) for p in tmpfs), tmpfs
            assert host_mounts() == before
    finally:
        stop.set()
        t.join()
    assert swaps[0] > 100
    assert os.listdir(host_target) == ["host-file"], "a mount or mkdir reached the host"
    assert os.listdir(src) in ([], ["sub"])     # the tmpfs's mountpoint, in the bind source
    assert host_mounts() == before
    assert outcomes["ok"] > 0, outcomes


def test_unrelated_renames_do_not_fail_create(runtime, make_bundle, public_dir):
    b = make_bundle()
    os.rmdir(os.path.join(b.rootfs, "var", "run"))
    os.symlink("../run", os.path.join(b.rootfs, "var", "run"))
    b.config["mounts"] += [{"destination": f"/var/run/m{i}", "type": "tmpfs",
                            "source": "tmpfs"} for i in range(4)]
    b.args("true")
    # renames in a directory that has nothing to do with any container
    elsewhere = os.path.join(public_dir, "elsewhere")
    os.mkdir(elsewhere)
    a, z = os.path.join(elsewhere, "a"), os.path.join(elsewhere, "z")
    open(a, "w").close()
    stop = threading.Event()

    def renamer():
        while not stop.is_set():
            os.rename(a, z)
            os.rename(z, a)

    t = threading.Thread(target=renamer, daemon=True)
    t.start()
    failures = []
    base = b.id
    cgroup_parent = os.path.dirname(b.config["linux"]["cgroupsPath"])
    try:
        for i in range(20):
            b.id = f"{base}-{i}"
            b.config["linux"]["cgroupsPath"] = f"{cgroup_parent}/{b.id}"
            res = run(runtime, b, check=False, timeout=30)
            if res.returncode != 0:
                failures.append(res.stderr.strip())
                assert_nothing_left(runtime, b)
    finally:
        stop.set()
        t.join()
    assert failures == [], f"{len(failures)} of 20 creates failed: {failures[:2]}"


# -- the default config's confinement ----------------------------------------------------------
# runc's default masked and readonly paths that this kernel has (no kcore, sysrq or
# scsi here, for instance): the ones the attempts below can aim at.
MASKED = [p for p in ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                      "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                      "/proc/sched_debug", "/sys/firmware", "/proc/scsi") if os.path.exists(p)]
READONLY = [p for p in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
            if os.path.exists(p)]
MASKED_FILES = [p for p in MASKED if not os.path.isdir(p)]
MASKED_DIRS = [p for p in MASKED if os.path.isdir(p)]


def _attempts():
    """{name: shell command that must fail} against the default config."""
    att = {}
    for p in MASKED_FILES + MASKED_DIRS:
        att[f"umount {p}"] = f"umount {p}"
        att[f"umount-lazy {p}"] = f"umount -l {p}"
    for p in MASKED_FILES:
        att[f"bind-over {p}"] = f"mount --bind /etc/passwd {p}"
        att[f"rm {p}"] = f"rm {p}"
        att[f"mv {p}"] = f"mv {p} /tmp/moved"
    for p in MASKED_DIRS:
        att[f"bind-over {p}"] = f"mount --bind /tmp {p}"
    for p in READONLY:
        att[f"umount {p}"] = f"umount {p}"
        att[f"remount-rw {p}"] = f"mount -o remount,rw {p}"
        att[f"remount-bind-rw {p}"] = f"mount -o remount,bind,rw {p}"
    att.update({
        "mount proc": "mount -t proc proc /mnt",
        "mount tmpfs": "mount -t tmpfs none /mnt",
        "remount-rw /sys": "mount -o remount,rw /sys",
        "write /proc/sys/vm/drop_caches": "echo 1 > /proc/sys/vm/drop_caches",
        "write /proc/sys/kernel/hostname": "echo evil > /proc/sys/kernel/hostname",
        # the current value, written back: harmless should it ever succeed
        "write /sys/kernel/mm/transparent_hugepage/defrag":
            "v=$(sed 's/.*\\[\\(.*\\)\\].*/\\1/' /sys/kernel/mm/transparent_hugepage/defrag);"
            " echo $v > /sys/kernel/mm/transparent_hugepage/defrag",
        "write /sys/class/net/lo/uevent": "echo change > /sys/class/net/lo/uevent",
        "mkdir in /sys/fs/cgroup": "mkdir /sys/fs/cgroup/memory/evil",
    })
    if os.path.exists("/proc/sysrq-trigger"):
        att["write /proc/sysrq-trigger"] = "echo h > /proc/sysrq-trigger"   # h: help
    return att


def test_masked_and_readonly_paths_hold(runtime, bundle):
    attempts = _attempts()
    script = ["echo === results"]
    for i, cmd in enumerate(attempts.values()):
        script.append(f"( {cmd} ) >/dev/null 2>&1; echo {i} $?")
    for p in MASKED_FILES:
        script.append(f"echo === {p}; cat {p}")
    for p in MASKED_DIRS:
        script.append(f"echo === {p}; ls -A {p}")
    script += ["echo === hostname; cat /proc/sys/kernel/hostname; hostname",
               "echo === mountinfo; cat /proc/self/mountinfo"]
    bundle.sh("; ".join(script))
    sec = sections(output(runtime, bundle))
    names = list(attempts)
    results = {names[int(i)]: rc
               for i, rc in (line.split() for line in sec["results"].splitlines())}
    assert len(results) == len(attempts)
    assert [name for name, rc in results.items() if rc == "0"] == []
    # still masked after all that
    for p in MASKED:
        assert sec[p] == "", p
    assert sec["hostname"].split() == ["runtime", "runtime"]
    mounts = parse_mountinfo(sec["mountinfo"])
    for p in READONLY + ["/sys"]:
        assert "ro" in mounts[p].options, p


def _host_root_device():
    st = os.stat("/")
    return os.major(st.st_dev), os.minor(st.st_dev)


def _openable_block_device():
    """A block device the host's root can open (a loop device), for the control."""
    for n in range(8):
        path = f"/dev/loop{n}"
        try:
            st = os.stat(path)
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        except OSError:
            continue
        return os.major(st.st_rdev), os.minor(st.st_rdev)
    return None


@pytest.mark.parametrize("allowed", [False, True], ids=["default", "control-allowed"])
def test_device_nodes_of_the_host_cannot_be_opened(runtime, bundle, probe, allowed):
    """Device nodes planted in the rootfs: the devices cgroup of the default config
    denies opening them (EPERM); the control allows two of them and they open."""
    loop = _openable_block_device()
    if loop is None:
        pytest.skip("no loop device the host can open")
    prepare(bundle, probe)
    disk = _host_root_device()
    nodes = {"hostdisk": (stat.S_IFBLK, disk), "loop": (stat.S_IFBLK, loop),
             "loopctl": (stat.S_IFCHR, (10, 237))}     # /dev/loop-control
    for name, (kind, (major, minor)) in nodes.items():
        os.mknod(os.path.join(bundle.rootfs, name), 0o600 | kind, os.makedev(major, minor))
    if allowed:
        bundle.config["linux"]["resources"]["devices"] += [
            {"allow": True, "type": "b", "major": loop[0], "minor": loop[1], "access": "r"},
            {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "r"}]
    bundle.sh("for n in hostdisk loop loopctl; do /probe open /$n r; done; "
              f"/probe mknod /tmp/disk2 b {disk[0]} {disk[1]}; /probe mknod /tmp/null2 c 1 3")
    out = output(runtime, bundle).splitlines()
    want = "open: ok" if allowed else "open: EPERM"
    # the host's root disk is never opened (this host refuses it even to its own root)
    assert out == ["open: EPERM", want, want, "mknod: EPERM", "mknod: EPERM"]


# -- files the runtime writes where others can write ----------------------------------------
def test_pid_file_never_writes_through_planted_symlinks(runtime, make_bundle, tmp_path):
    """A container sharing the directory where a client asks for a pid file plants
    symlinks to a host file under every temporary name the runtime might use
    (".<name>.<pid>" for the next few hundred pids) and at the pid file's own name.
    The host file must keep its contents; the pid file must hold the pid."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)                  # not sticky: protected_symlinks does not apply
    victim = tmp_path / "host-file"
    victim.write_text("precious\n")
    with open("/proc/sys/kernel/ns_last_pid") as f:
        last = int(f.read())
    attacker = make_bundle()
    attacker.config["mounts"].append({"destination": "/shared", "type": "bind",
                                      "source": str(shared), "options": ["rbind", "rw"]})
    attacker.sh(f"i={last}; while [ $i -lt {last + 400} ]; do "
                f"ln -s {victim} /shared/.c2.pid.$i; i=$((i + 1)); done; "
                f"ln -s {victim} /shared/c2.pid; ls -A /shared | wc -l")
    assert output(runtime, attacker).strip() == "401"
    target = make_bundle()
    target.args("true")
    bg = Background(runtime, target, tmp_path, "--pid-file", str(shared / "c2.pid"), start=False)
    try:
        assert victim.read_text() == "precious\n"
        assert not os.path.islink(shared / "c2.pid")
        assert (shared / "c2.pid").read_text() == str(bg.pid)
        planted = [n for n in os.listdir(shared) if n.startswith(".c2.pid.")]
        assert len(planted) == 400, "the runtime removed or replaced a file it did not make"
    finally:
        runtime("delete", "--force", target.id)


# -- mounts over /proc: lying to the runtime ------------------------------------------------
def unquoted(log_line):
    """The text log quotes msg as logrus does (\\" for ")."""
    return log_line.replace('\\"', '"')


@pytest.mark.parametrize("route", ["direct", "symlink", "dotdot"])
def test_no_mount_covers_a_file_of_proc(runtime, bundle, tmp_path, route):
    """A file holding 0 bound over /proc/sys/kernel/cap_last_cap would make the
    capability drop skip every capability above 0 (the container keeps
    CAP_SYS_ADMIN and mounts).  Refused before anything runs, whether the
    destination names /proc or reaches it through a symlink of the rootfs; the
    container reports its capabilities if the attack ever gets through."""
    zero = tmp_path / "zero"
    zero.write_text("0\n")
    dest = {"direct": "/proc/sys/kernel/cap_last_cap", "symlink": "/lie",
            "dotdot": "/tmp/../proc//sys/kernel/cap_last_cap"}[route]
    if route == "symlink":
        os.symlink("/proc/sys/kernel/cap_last_cap", os.path.join(bundle.rootfs, "lie"))
    bundle.config["mounts"].append({"destination": dest, "type": "bind", "source": str(zero),
                                    "options": ["bind", "ro"]})
    bundle.sh("grep CapEff /proc/self/status; mount -t tmpfs none /mnt && echo MOUNTED")
    bundle.write()
    res = runtime("run", "--bundle", bundle.path, bundle.id, check=False)
    assert "MOUNTED" not in res.stdout and "CapEff" not in res.stdout, res.stdout
    assert res.returncode != 0
    index = len(bundle.config["mounts"]) - 1
    want = (f'mounts[{index}].destination: "/proc/sys/kernel/cap_last_cap" cannot be mounted '
            "because it is inside /proc")
    assert want in unquoted(res.stderr), res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert_nothing_left(runtime, bundle)


def test_the_files_lxcfs_replaces_may_be_covered(runtime, bundle, tmp_path):
    """runc's exceptions: /proc/uptime, /proc/meminfo... (lxcfs binds its own)."""
    fake = tmp_path / "uptime"
    fake.write_text("12345.67 890.12\n")
    bundle.config["mounts"].append({"destination": "/proc/uptime", "type": "bind",
                                    "source": str(fake), "options": ["bind", "ro"]})
    bundle.sh("cat /proc/uptime")
    assert output(runtime, bundle) == "12345.67 890.12\n"


def test_proc_itself_takes_only_procfs(runtime, bundle, tmp_path):
    (tmp_path / "fakeproc").mkdir()
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/proc"]
    bundle.config["mounts"].append({"destination": "/proc", "type": "bind",
                                    "source": str(tmp_path / "fakeproc"), "options": ["rbind"]})
    bundle.args("true")
    bundle.write()
    res = runtime("run", "--bundle", bundle.path, bundle.id, check=False)
    assert res.returncode != 0
    assert '"/proc" cannot be mounted because it is not of type proc' in unquoted(res.stderr)
    assert_nothing_left(runtime, bundle)
    # a bind of a procfs is a proc mount
    bundle.config["mounts"][-1]["source"] = "/proc"
    bundle.sh("test -e /proc/self/status && echo proc")
    assert output(runtime, bundle) == "proc\n"


@pytest.mark.parametrize("rules", ["deny-all", "none"])
def test_host_console_cannot_be_opened_with_cap_mknod(runtime, bundle, probe, rules):
    """With CAP_MKNOD (in Docker's and containerd's default sets) a container makes
    c 5:1 and would open the host's console (then TIOCSCTTY + TIOCSTI to type into
    it).  The devices cgroup must refuse the open, as runc's, whether the config
    starts its device rules with "deny all" or has none; /dev/null still opens."""
    prepare(bundle, probe)
    caps = bundle.config["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind] = sorted(set(caps.get(kind, [])) | {"CAP_MKNOD"})
    if rules == "none":
        bundle.config["linux"].get("resources", {}).pop("devices", None)
    bundle.sh("/probe mknod /tmp/console c 5 1; /probe open /tmp/console rw;"
              " /probe open /tmp/console w; /probe mknod /tmp/null c 1 3; /probe open /tmp/null rw")
    out = output(runtime, bundle).splitlines()
    assert out == ["mknod: ok", "open: EPERM", "open: EPERM", "mknod: ok", "open: ok"]


def test_kernel_modules_mount_and_ptrace_are_denied(runtime, bundle, probe):
    prepare(bundle, probe)
    # what the kernel answers root on the host: a kernel without module support says
    # ENOSYS to everyone, and then the container cannot be told apart by this call
    host = subprocess.run([probe, "finit_module", "/dev/null"], capture_output=True,
                          text=True).stdout.split(": ")[1].strip()
    module_errno = "ENOSYS" if host == "ENOSYS" else "EPERM"
    bundle.sh(f"/probe init_module; /probe finit_module /bin/busybox; /probe ptrace {os.getpid()};"
              f" /probe ptrace {os.getppid()}; kill -0 {os.getpid()} 2>/dev/null; echo kill $?;"
              " mount -t tmpfs none /mnt 2>/dev/null; echo mount $?;"
              " mount --bind /bin /mnt 2>/dev/null; echo bind $?;"
              " unshare -m true 2>/dev/null; echo unshare $?; /probe ids")
    out = output(runtime, bundle).splitlines()
    assert out[0] == f"init_module: {module_errno}"
    assert out[1] == f"finit_module: {module_errno}"
    # host processes are not even visible
    assert out[2:5] == ["ptrace: ESRCH", "ptrace: ESRCH", "kill 1"]
    assert [line.split()[0] for line in out[5:8]] == ["mount", "bind", "unshare"]
    assert all(line.split()[1] != "0" for line in out[5:8]), out[5:8]
    assert out[8] == "uid=0 euid=0 gid=0 egid=0"     # all that as root of the container


# -- a large config: no quadratic step -------------------------------------------------------
def test_a_100_mb_config_is_created_in_linear_time(runtime, bundle):
    """100 MB of annotations (they travel to the init and back in the state): the
    parent/child channel once re-copied the rest of a message for each 32 KiB packet
    (50 MB took 24 s, 100 MB over 120 s; runc 3.9 s).  A bound, not a timing: linear
    work finishes in seconds (7.5 s here; runc 6.2 s), the quadratic one not in 60."""
    bundle.config["annotations"] = {f"key-{i}": f"{i:08d}" * 128 for i in range(100 * 1024)}
    bundle.args("true")
    bundle.write()
    assert os.path.getsize(os.path.join(bundle.path, "config.json")) > 100 << 20
    try:
        runtime("create", "--bundle", bundle.path, bundle.id, timeout=60)
        state = runtime.state(bundle.id)
        assert state["status"] == "created"
        assert state["annotations"]["key-102399"] == "00102399" * 128
        runtime("start", bundle.id, timeout=60)
    finally:
        runtime("delete", "--force", bundle.id, timeout=60)


def test_2000_cgroup_mounts_are_made_in_linear_time(runtime, bundle):
    """Found by the fuzzer: each cgroup mount re-read the host's mount table, which
    every mount lengthens (2000 of them did not finish in 30 s).  A bound, not a
    timing."""
    bundle.config["mounts"] += [{"destination": f"/m{i}", "type": "cgroup", "source": "cgroup",
                                 "options": ["ro", "nosuid"]} for i in range(2000)]
    bundle.sh("grep -c ' /m[0-9]* ' /proc/self/mountinfo | head -1; test -d /m1999 && echo ok")
    bundle.write()
    res = runtime("run", "--bundle", bundle.path, bundle.id, timeout=60)
    assert res.stdout.splitlines()[-1] == "ok"
    assert int(res.stdout.split()[0]) >= 2000
