"""The process-security settings of config.json, each checked from inside a real
container: capabilities, noNewPrivileges, rlimits, oomScoreAdj, scheduler,
ioPriority, execCPUAffinity, personality, memoryPolicy, seccomp (errno and a
SCMP_ACT_NOTIFY agent), the LSM labels and intelRdt on a host without them, and a
rootless container run by an unprivileged user.

The probe (tests/integration/probes/probe.c) is built with ``gcc -static`` once per
session and copied into the bundles that need it.
"""

import array
import fcntl
import json
import os
import pwd
import resource
import select
import shutil
import socket
import struct
import subprocess
import threading

import pytest

from support import (RUNTIME, Background, assert_nothing_left, output, run, status_fields,
                     wait_status)

pytestmark = pytest.mark.integration

# -- helpers ----------------------------------------------------------------------------


def install(bundle, probe, mode=0o755):
    """Copy the probe to /probe in the bundle's rootfs."""
    dst = os.path.join(bundle.rootfs, "probe")
    shutil.copyfile(probe, dst)
    os.chmod(dst, mode)
    return "/probe"


# Containers whose process is not root once needed umask 0 around the runtime
# (exec.fifo was made under the caller's umask); kept to run as before.
UMASK0 = {"umask": 0}

CAP = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7,
       "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21,
       "CAP_AUDIT_WRITE": 29}


def mask(*names):
    return sum(1 << CAP[n] for n in names)


def cap_sets(status_text):
    st = status_fields(status_text)
    return {k: int(st[k], 16) for k in ("CapBnd", "CapInh", "CapPrm", "CapEff", "CapAmb")}


# -- capabilities -------------------------------------------------------------------------
# execve(2) recomputes permitted and effective.  For root under no_new_privs the new
# permitted set is (inheritable | bounding) capped by the old permitted set, i.e. the
# configured one, and effective = permitted; ambient capabilities survive.  So with
# effective == permitted every one of the five sets is observable exactly.
ROOT_CAPS = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETUID"],
    "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
    "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETUID"],
    # NET_BIND_SERVICE is inheritable and permitted: raised.  SYS_ADMIN is neither
    # permitted nor in the bounding set: the kernel refuses it, the runtime goes on.
    "ambient": ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"],
}
ROOT_EXPECTED = {
    "CapBnd": mask(*ROOT_CAPS["bounding"]),
    "CapInh": mask(*ROOT_CAPS["inheritable"]),
    "CapPrm": mask(*ROOT_CAPS["permitted"]),
    "CapEff": mask(*ROOT_CAPS["permitted"]),
    "CapAmb": mask("CAP_NET_BIND_SERVICE"),
}


def test_capabilities_of_root_exactly_as_configured(runtime, bundle):
    bundle.process["capabilities"] = ROOT_CAPS
    bundle.args("cat", "/proc/self/status")
    assert cap_sets(output(runtime, bundle)) == ROOT_EXPECTED


def test_ambient_capabilities_of_a_user(runtime, bundle):
    # uid 1000 running a file without capabilities: permitted = effective = ambient
    # after execve, so only the ambient set gives it capabilities.
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"],
        "permitted": ["CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
        "ambient": ["CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"],   # CHOWN: not inheritable
    }
    bundle.sh("cat /proc/self/status; chown 0 /tmp && echo chown-ok; true")
    out = output(runtime, bundle, **UMASK0)
    amb = mask("CAP_KILL", "CAP_NET_RAW")
    assert cap_sets(out) == {"CapBnd": mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"),
                             "CapInh": amb, "CapPrm": amb, "CapEff": amb, "CapAmb": amb}
    assert "chown-ok" not in out   # CAP_CHOWN was not raised into the ambient set


def test_capabilities_of_exec_processes(runtime, bundle, tmp_path):
    bundle.args("sleep", "30")
    Background(runtime, bundle, tmp_path)
    try:
        proc = dict(bundle.process, args=["cat", "/proc/self/status"], capabilities=ROOT_CAPS)
        pfile = tmp_path / "process.json"
        pfile.write_text(json.dumps(proc))
        res = runtime("exec", "--process", pfile, bundle.id)
        assert cap_sets(res.stdout) == ROOT_EXPECTED
        # the container's own set (runc's default three) for a plain exec
        res = runtime("exec", bundle.id, "cat", "/proc/self/status")
        default = mask("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
        sets = cap_sets(res.stdout)
        assert sets["CapBnd"] == sets["CapPrm"] == sets["CapEff"] == default
    finally:
        runtime("delete", "--force", bundle.id)


def test_unknown_capability_names_only_warn(runtime, bundle):
    bundle.process["capabilities"] = {
        k: ["CAP_KILL", "CAP_BOGUS_THING"] for k in ("bounding", "effective", "permitted")}
    bundle.process["capabilities"]["ambient"] = ["CAP_ALSO_BOGUS"]
    bundle.args("grep", "^Cap", "/proc/self/status")
    res = run(runtime, bundle)
    assert cap_sets(res.stdout)["CapBnd"] == mask("CAP_KILL")
    warnings = [line for line in res.stderr.splitlines() if "level=warning" in line]
    assert any("CAP_BOGUS_THING" in w and "CAP_ALSO_BOGUS" in w for w in warnings), res.stderr


# -- noNewPrivileges ------------------------------------------------------------------------
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_no_new_privileges_and_a_setuid_root_binary(runtime, bundle, probe, nnp):
    path = install(bundle, probe, mode=0o4755)     # owned by root: setuid root
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["noNewPrivileges"] = nnp
    bundle.sh(f"grep NoNewPrivs /proc/self/status; {path} ids")
    out = output(runtime, bundle, **UMASK0).splitlines()
    assert out[0].split() == ["NoNewPrivs:", "1" if nnp else "0"]
    # the control (no_new_privs off) proves the binary does gain euid 0 otherwise
    assert out[1] == ("uid=1000 euid=1000 gid=1000 egid=1000" if nnp
                      else "uid=1000 euid=0 gid=1000 egid=1000")


# -- rlimits, oomScoreAdj -----------------------------------------------------------------------
LIMIT_ROWS = {"RLIMIT_NOFILE": "Max open files", "RLIMIT_CORE": "Max core file size",
              "RLIMIT_STACK": "Max stack size", "RLIMIT_MEMLOCK": "Max locked memory",
              "RLIMIT_NPROC": "Max processes", "RLIMIT_MSGQUEUE": "Max msgqueue size",
              "RLIMIT_CPU": "Max cpu time", "RLIMIT_FSIZE": "Max file size",
              "RLIMIT_SIGPENDING": "Max pending signals"}
UNLIMITED = 2 ** 64 - 1
RLIMITS = [
    {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
    {"type": "RLIMIT_CORE", "soft": 0, "hard": UNLIMITED},
    {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 16777216},
    {"type": "RLIMIT_MEMLOCK", "soft": 65536, "hard": 131072},
    {"type": "RLIMIT_NPROC", "soft": 500, "hard": 501},
    {"type": "RLIMIT_MSGQUEUE", "soft": 1000, "hard": 2000},
    {"type": "RLIMIT_CPU", "soft": 100, "hard": UNLIMITED},
    {"type": "RLIMIT_FSIZE", "soft": 1048576, "hard": 2097152},
    {"type": "RLIMIT_SIGPENDING", "soft": 77, "hard": 88},
]


def _have_cap(bit):
    with open("/proc/self/status") as f:
        return bool(int(status_fields(f.read())["CapEff"], 16) >> bit & 1)


CAP_SYS_RESOURCE = 24
needs_sys_resource = pytest.mark.skipif(
    not _have_cap(CAP_SYS_RESOURCE),
    reason="the tests run without CAP_SYS_RESOURCE (raising a hard limit or lowering "
           "oom_score_adj needs it)")


def limits_table(text):
    """{row title: [soft, hard]} of /proc/<pid>/limits."""
    return {line[:26].strip(): line[26:].split()[:2] for line in text.splitlines()[1:]}


def expected_limits():
    return {LIMIT_ROWS[r["type"]]: [str(v) if v != UNLIMITED else "unlimited"
                                    for v in (r["soft"], r["hard"])] for r in RLIMITS}


def test_rlimits(runtime, bundle):
    # every hard limit is within the runtime's own (no CAP_SYS_RESOURCE needed)
    for rl in RLIMITS:
        hard = resource.getrlimit(getattr(resource, rl["type"]))[1]
        assert hard == resource.RLIM_INFINITY or rl["hard"] <= hard, rl
    bundle.process["rlimits"] = RLIMITS
    bundle.args("cat", "/proc/self/limits")
    rows = limits_table(output(runtime, bundle))
    assert {k: rows[k] for k in LIMIT_ROWS.values()} == expected_limits()


@needs_sys_resource
def test_rlimit_above_the_runtimes_own_hard_limit(runtime, bundle):
    bundle.process["rlimits"] = [{"type": "RLIMIT_NICE", "soft": 3, "hard": 4}]
    bundle.args("cat", "/proc/self/limits")
    assert limits_table(output(runtime, bundle))["Max nice priority"] == ["3", "4"]


def test_rlimits_and_oom_score_adj_of_exec_processes(runtime, bundle, tmp_path):
    bundle.args("sleep", "30")
    bundle.process["oomScoreAdj"] = 200
    Background(runtime, bundle, tmp_path)
    try:
        proc = dict(bundle.process, args=["sh", "-c", "cat /proc/self/oom_score_adj;"
                                          " cat /proc/self/limits"],
                    rlimits=RLIMITS, oomScoreAdj=300)
        pfile = tmp_path / "process.json"
        pfile.write_text(json.dumps(proc))
        out = runtime("exec", "--process", pfile, bundle.id).stdout
        first, _, limits = out.partition("\n")
        assert first == "300"
        rows = limits_table(limits)
        assert {k: rows[k] for k in LIMIT_ROWS.values()} == expected_limits()
        with open(f"/proc/{runtime.state(bundle.id)['pid']}/oom_score_adj") as f:
            assert f.read() == "200\n"
    finally:
        runtime("delete", "--force", bundle.id)


@pytest.mark.parametrize("adj", [pytest.param(-500, marks=needs_sys_resource), 0, 123, 1000])
def test_oom_score_adj(runtime, bundle, adj):
    bundle.process["oomScoreAdj"] = adj
    bundle.args("cat", "/proc/self/oom_score_adj")
    assert output(runtime, bundle) == f"{adj}\n"


# -- scheduling, I/O priority, CPU affinity ----------------------------------------------------
SCHED_OTHER, SCHED_BATCH, SCHED_IDLE = 0, 3, 5


@pytest.mark.parametrize("policy,nice,want", [
    ("SCHED_BATCH", 7, SCHED_BATCH), ("SCHED_IDLE", 0, SCHED_IDLE),
    ("SCHED_OTHER", 10, SCHED_OTHER)])
def test_scheduler(runtime, bundle, probe, policy, nice, want):
    path = install(bundle, probe)
    bundle.process["scheduler"] = {"policy": policy, "nice": nice}
    bundle.sh(f"{path} sched; grep -E '^policy' /proc/self/sched")
    out = output(runtime, bundle).splitlines()
    fields = dict(kv.split("=") for kv in out[0].split())
    assert int(fields["policy"]) == want
    assert int(fields["nice"]) == nice
    assert out[1].split()[-1] == str(want)


@pytest.mark.parametrize("klass,prio,name,num", [
    ("IOPRIO_CLASS_BE", 6, "best-effort", 2), ("IOPRIO_CLASS_IDLE", 0, "idle", 3),
    ("IOPRIO_CLASS_RT", 2, "realtime", 1)])
def test_io_priority(runtime, bundle, probe, klass, prio, name, num):
    path = install(bundle, probe)
    bundle.process["ioPriority"] = {"class": klass, "priority": prio}
    bundle.sh(f"{path} sched; ionice -p $$")
    out = output(runtime, bundle).splitlines()
    assert out[0].split()[-1] == f"ioprio={num}/{prio}"
    assert out[1].startswith(name)


def cpus_allowed(text):
    return status_fields(text)["Cpus_allowed_list"]


@pytest.mark.skipif(os.cpu_count() < 2, reason="needs two CPUs")
def test_exec_cpu_affinity(runtime, bundle, tmp_path):
    bundle.process["execCPUAffinity"] = {"final": "1"}
    bundle.args("sleep", "30")
    Background(runtime, bundle, tmp_path)
    try:
        pid = runtime.state(bundle.id)["pid"]
        with open(f"/proc/{pid}/status") as f:
            assert cpus_allowed(f.read()) == "1"
        proc = dict(bundle.process, args=["cat", "/proc/self/status"],
                    execCPUAffinity={"initial": "0", "final": "0"})
        pfile = tmp_path / "process.json"
        pfile.write_text(json.dumps(proc))
        assert cpus_allowed(runtime("exec", "--process", pfile, bundle.id).stdout) == "0"
        # initial before the cgroup, final after: the program runs on final
        proc["execCPUAffinity"] = {"initial": "0", "final": "1"}
        pfile.write_text(json.dumps(proc))
        assert cpus_allowed(runtime("exec", "--process", pfile, bundle.id).stdout) == "1"
        # a plain exec inherits the container's process (final "1")
        assert cpus_allowed(runtime("exec", bundle.id, "cat", "/proc/self/status").stdout) == "1"
    finally:
        runtime("delete", "--force", bundle.id)


# -- personality, memory policy -----------------------------------------------------------------
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="LINUX32 reports i686 on x86_64")
def test_personality_linux32(runtime, make_bundle):
    b32 = make_bundle()
    b32.config["linux"]["personality"] = {"domain": "LINUX32"}
    b32.sh("uname -m; grep -c . /proc/self/personality 2>/dev/null; true")
    assert output(runtime, b32).splitlines()[0] == "i686"
    b64 = make_bundle()
    b64.config["linux"]["personality"] = {"domain": "LINUX"}
    b64.args("uname", "-m")
    assert output(runtime, b64) == "x86_64\n"


def _node0_online():
    try:
        with open("/sys/devices/system/node/online") as f:
            return 0 in {int(x) for part in f.read().strip().split(",")
                         for x in part.split("-")[:1]}
    except OSError:
        return False


MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE = 1, 2, 3
MPOL_F_STATIC_NODES = 1 << 15


@pytest.mark.skipif(not _node0_online(), reason="no NUMA node 0 (kernel without CONFIG_NUMA)")
@pytest.mark.parametrize("mode,flags,want,numa_word", [
    ("MPOL_BIND", [], MPOL_BIND, "bind:0"),
    ("MPOL_PREFERRED", [], MPOL_PREFERRED, "prefer:0"),
    ("MPOL_INTERLEAVE", ["MPOL_F_STATIC_NODES"], MPOL_INTERLEAVE | MPOL_F_STATIC_NODES,
     "interleave=static:0"),
])
def test_memory_policy(runtime, bundle, probe, mode, flags, want, numa_word):
    path = install(bundle, probe)
    bundle.config["linux"]["memoryPolicy"] = {"mode": mode, "nodes": "0", "flags": flags}
    bundle.sh(f"{path} mempolicy; grep -m1 heap /proc/self/numa_maps || "
              "head -n1 /proc/self/numa_maps")
    out = output(runtime, bundle).splitlines()
    assert out[0] == f"mode={want} nodes=0x1"
    assert out[1].split()[1] == numa_word


# -- seccomp ----------------------------------------------------------------------------------
ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64",
          "SCMP_ARCH_ARM"]
ENOMSG = 42          # errnoRet: strerror "No message of desired type"


def errno_filter():
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": ENOMSG}]}


def test_seccomp_errno_applies_to_init_and_exec(runtime, bundle, tmp_path):
    bundle.config["linux"]["seccomp"] = errno_filter()
    bundle.sh("grep -E '^Seccomp' /proc/self/status; mkdir /tmp/denied;"
              " echo rc=$?; ls /tmp; sleep 30")
    bg = Background(runtime, bundle, tmp_path)
    try:
        res = runtime("exec", bundle.id, "sh", "-c",
                      "grep -E '^Seccomp' /proc/self/status; mkdir /tmp/denied2; echo rc=$?",
                      check=False)
        assert res.returncode == 0, res.stderr
        exec_lines = res.stdout.splitlines()
        assert "No message of desired type" in res.stderr
        assert status_fields(res.stdout)["Seccomp"] == "2"
        assert status_fields(res.stdout)["Seccomp_filters"] == "1"
        assert exec_lines[-1] == "rc=1"
        # a syscall the filter allows still works in an exec process
        assert runtime("exec", bundle.id, "touch", "/tmp/allowed").returncode == 0
    finally:
        runtime("kill", bundle.id, "KILL")
        bg.wait()
        runtime("delete", bundle.id)
    out = bg.output()
    st = status_fields(out)
    assert st["Seccomp"] == "2" and st["Seccomp_filters"] == "1"
    assert "rc=1" in out.splitlines()
    assert "No message of desired type" in bg.errors()
    assert sorted(os.listdir(os.path.join(bundle.rootfs, "tmp"))) == ["allowed"]


# struct seccomp_notif (80 bytes) / seccomp_notif_resp (24 bytes), <linux/seccomp.h>
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100     # _IOWR('!', 0, struct seccomp_notif)
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101     # _IOWR('!', 1, struct seccomp_notif_resp)
NR = {"x86_64": {"mkdir": 83, "mkdirat": 258}, "aarch64": {"mkdirat": 34}}


class SeccompAgent(threading.Thread):
    """A seccomp agent: receives the container process state and the listener fd on
    a unix socket (SCM_RIGHTS), then answers every notification with success
    without doing the syscall, or (``proceed``) lets the kernel do it."""

    def __init__(self, path, proceed=False):
        super().__init__(daemon=True)
        self.path = path
        self.proceed = proceed
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.state = None
        self.fds = []
        self.syscalls = []
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(20)
                fds = array.array("i")
                data = b""
                while True:
                    msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
                    for level, kind, payload in anc:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                    if not msg:
                        break
                    data += msg
            self.state = json.loads(data)
            self.fds = list(fds)
            self.serve(self.fds[0])
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def serve(self, fd):
        while not self.stop.is_set():
            ready = select.select([fd], [], [], 0.1)[0]
            if not ready:
                continue
            req = bytearray(80)
            try:
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req, True)
            except OSError:
                return      # the filter's last process is gone
            nid, pid, _flags, nr = struct.unpack_from("=QIIi", req)
            self.syscalls.append((pid, nr))
            # "succeeded, returns 0", or SECCOMP_USER_NOTIF_FLAG_CONTINUE
            resp = bytearray(struct.pack("=QqiI", nid, 0, 0, 1 if self.proceed else 0))
            try:
                fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp, True)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.join(5)
        self.sock.close()
        for fd in self.fds:
            os.close(fd)


@pytest.mark.skipif(os.uname().machine not in NR, reason="syscall numbers for x86_64/aarch64")
def test_seccomp_notify_agent(runtime, bundle, public_dir):
    agent = SeccompAgent(os.path.join(public_dir, "agent.sock"))
    agent.start()
    try:
        filt = errno_filter()
        filt["listenerPath"] = agent.path
        filt["listenerMetadata"] = "hello-agent"
        filt["syscalls"][0]["action"] = "SCMP_ACT_NOTIFY"
        filt["syscalls"][0].pop("errnoRet")
        bundle.config["linux"]["seccomp"] = filt
        # the agent says mkdir succeeded without making the directory
        bundle.sh("mkdir /tmp/faked && echo mkdir-ok; test -d /tmp/faked || echo absent")
        out = output(runtime, bundle, timeout=30)
    finally:
        agent.close()
    assert agent.error is None, agent.error
    assert out.split() == ["mkdir-ok", "absent"]
    assert [nr for _, nr in agent.syscalls] and \
        {nr for _, nr in agent.syscalls} <= set(NR[os.uname().machine].values())
    st = agent.state
    assert len(agent.fds) == 1
    assert st["ociVersion"] and st["fds"] == ["seccompFd"]
    assert st["metadata"] == "hello-agent"
    assert st["state"]["id"] == bundle.id and st["state"]["bundle"] == bundle.path
    assert st["state"]["status"] in ("creating", "created")
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert not os.path.exists(os.path.join(bundle.rootfs, "tmp", "faked"))


@pytest.mark.parametrize("nnp", [False, True], ids=["no-new-privs-off", "no-new-privs-on"])
def test_seccomp_notify_on_what_the_init_itself_calls(runtime, bundle, public_dir, nnp):
    """SCMP_ACT_NOTIFY on execve, openat, read and close: the listener fd reaches the
    agent before the init can make any notified call (it once blocked on its own
    notification before the fd left it, and `run` never returned)."""
    agent = SeccompAgent(os.path.join(public_dir, "agent.sock"), proceed=True)
    agent.start()
    try:
        bundle.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
            "listenerPath": agent.path,
            "syscalls": [{"names": ["execve", "openat", "read", "close"],
                          "action": "SCMP_ACT_NOTIFY"}]}
        bundle.process["noNewPrivileges"] = nnp
        bundle.sh("cat /etc/hostname >/dev/null; echo ran")
        out = output(runtime, bundle, timeout=30)
    finally:
        agent.close()
    assert agent.error is None, agent.error
    assert out == "ran\n"
    assert agent.syscalls, "the agent saw no notification"


# What the runtime itself may still call once a filter is loaded: a profile that
# denies one of them must either not matter or make create fail with the reason,
# never leave a created container that cannot start (or a create that "succeeded"
# around a dead init).  With no_new_privs (the default) the helper loads the filter
# right before the program's execve, so none of them matters; without it the filter
# is loaded before the privileges are dropped (as runc does).
AFTER_FILTER = ["close_range", "close", "fcntl", "sendmsg", "recvmsg", "setgroups",
                "setresuid", "setresgid", "capset", "capget", "prctl", "openat2", "fsopen",
                "memfd_create", "lseek", "dup2", "dup3", "umask", "chdir", "ioctl",
                "sched_setaffinity", "getcwd", "rt_sigaction", "execveat"]
ACTIONS = {"errno": {"action": "SCMP_ACT_ERRNO", "errnoRet": 1},
           "enosys": {"action": "SCMP_ACT_ERRNO", "errnoRet": 38},
           "kill": {"action": "SCMP_ACT_KILL"}}


@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_seccomp_denying_what_the_runtime_calls(runtime, make_bundle, probe, action, nnp):
    failures = []
    for name in AFTER_FILTER:
        b = make_bundle()
        path = install(b, probe)
        b.args(path, "noop")
        b.process["noNewPrivileges"] = nnp
        b.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
            "syscalls": [dict(ACTIONS[action], names=[name])]}
        b.write()
        res = runtime("create", "--bundle", b.path, b.id, check=False, timeout=30)
        if res.returncode != 0:
            # refused: one line with the reason, nothing left
            if nnp or res.stderr.count("level=error") != 1:
                failures.append(f"{name}: create failed: {res.stderr.strip()}")
            assert_nothing_left(runtime, b)
            continue
        state = runtime.state(b.id)
        if state["status"] != "created":
            failures.append(f"{name}: create succeeded around an init that is {state['status']}")
            runtime("delete", "--force", b.id)
            continue
        res = runtime("start", b.id, check=False, timeout=30)
        wait_status(runtime, b.id, "stopped")
        runtime("delete", b.id)
        if res.returncode != 0:
            failures.append(f"{name}: start failed: {res.stderr.strip()}")
    assert failures == []


# -- LSMs and intelRdt on a host without them --------------------------------------------------
def _lsm_enabled(name):
    try:
        with open("/sys/kernel/security/lsm") as f:
            return name in f.read().split(",")
    except OSError:
        return os.path.exists(f"/sys/kernel/security/{name}")


def create_fails(runtime, bundle, *words):
    """``create`` fails with a message naming ``words``, leaving nothing behind."""
    bundle.write()
    res = runtime("create", "--bundle", bundle.path, bundle.id, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    for w in words:
        assert w.lower() in res.stderr.lower(), res.stderr
    assert_nothing_left(runtime, bundle)
    return res.stderr


@pytest.mark.skipif(_lsm_enabled("apparmor"), reason="AppArmor is enabled on this host")
def test_apparmor_profile_without_apparmor_is_a_clear_error(runtime, bundle):
    bundle.process["apparmorProfile"] = "runtime-test-profile"
    create_fails(runtime, bundle, "apparmor", "runtime-test-profile", "not enabled")


@pytest.mark.skipif(_lsm_enabled("selinux"), reason="SELinux is enabled on this host")
def test_selinux_label_without_selinux_is_a_clear_error(runtime, bundle):
    bundle.process["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    create_fails(runtime, bundle, "selinux", "not enabled")


@pytest.mark.skipif(_lsm_enabled("apparmor") or _lsm_enabled("selinux"),
                    reason="an LSM is enabled on this host")
def test_exec_with_lsm_labels_without_the_lsms_is_a_clear_error(runtime, bundle, tmp_path):
    bundle.args("sleep", "30")
    Background(runtime, bundle, tmp_path)
    try:
        res = runtime("exec", "--apparmor", "some-profile", bundle.id, "true", check=False)
        assert res.returncode != 0 and "apparmor" in res.stderr.lower(), res.stderr
        res = runtime("exec", "--process-label", "system_u:system_r:x_t:s0", bundle.id, "true",
                      check=False)
        assert res.returncode != 0 and "selinux" in res.stderr.lower(), res.stderr
    finally:
        runtime("delete", "--force", bundle.id)


def _resctrl_mounted():
    with open("/proc/self/mountinfo") as f:
        return any(" - resctrl " in line for line in f)


@pytest.mark.skipif(_resctrl_mounted(), reason="resctrl is mounted on this host")
@pytest.mark.parametrize("rdt", [{"closID": "runtime-test", "l3CacheSchema": "L3:0=f"},
                                 {"closID": "runtime-test"}, {"enableMonitoring": True}],
                         ids=["schema", "closid", "monitoring"])
def test_intel_rdt_without_resctrl_is_an_error(runtime, bundle, rdt):
    # config-linux.md: no resctrl mounted in the runtime namespace -> MUST error
    bundle.config["linux"]["intelRdt"] = rdt
    create_fails(runtime, bundle, "resctrl")


# -- rootless -----------------------------------------------------------------------------------
@pytest.fixture
def throwaway_user(public_dir):
    """A user made for the test (and removed after), with a home in public_dir."""
    name = f"rtsec{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", "--home-dir", public_dir,
                    "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        # processes of the user would make userdel fail: there must be none
        subprocess.run(["userdel", name], check=False, capture_output=True)
        assert name not in {p.pw_name for p in pwd.getpwall()}


def _chown_tree(path, uid, gid):
    os.lchown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), uid, gid)


@pytest.mark.skipif(not (shutil.which("useradd") and shutil.which("setpriv")),
                    reason="needs useradd and setpriv")
@pytest.mark.parametrize("how", ["user", "uid-0-of-its-user-namespace", "uid-0-with-root-given"])
def test_rootless_run_as_an_unprivileged_user(throwaway_user, make_bundle, public_dir, how):
    """As the user itself, and as rootless podman calls the runtime: uid 0 of a user
    namespace mapped to the user (no --root; XDG_RUNTIME_DIR and USER set), where
    the state goes under $XDG_RUNTIME_DIR and cgroups it may not make are skipped,
    as with runc."""
    user = throwaway_user
    uid, gid = user.pw_uid, user.pw_gid
    xdg = os.path.join(public_dir, "xdg")
    os.mkdir(xdg, 0o700)
    b = make_bundle(parent=public_dir)
    # the user's own rootfs: a copy (not hard links to root's busybox), owned by it
    busybox = os.path.join(b.rootfs, "bin", "busybox")
    os.unlink(busybox)
    shutil.copy2("/bin/busybox", busybox)
    _chown_tree(b.path, uid, gid)
    os.chown(xdg, uid, gid)
    env = {"PATH": "/usr/bin:/bin", "HOME": public_dir, "XDG_RUNTIME_DIR": xdg,
           "USER": user.pw_name}
    as_user = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"]
    inner = uid
    if how != "user":
        as_user += ["unshare", "--user", "--map-root-user", "--"]
        inner = 0

    # a wrapper that forces --root: then only the cgroups tell rootless from root
    forced = ["--root", os.path.join(xdg, "runtime")] if how == "uid-0-with-root-given" else []

    def call(*args, **kw):
        return subprocess.run(as_user + [RUNTIME] + forced + list(args), env=env, cwd=b.path,
                              capture_output=True, text=True, timeout=60, **kw)

    res = call("spec", "--rootless")
    assert res.returncode == 0, res.stderr
    with open(os.path.join(b.path, "config.json")) as f:
        config = json.load(f)
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": inner, "size": 1}]
    config["process"]["terminal"] = False
    config["root"]["readonly"] = False
    config["process"]["args"] = ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map;"
                                 " cat /proc/self/gid_map; touch /tmp/made-inside"]
    with open(os.path.join(b.path, "config.json"), "w") as f:
        json.dump(config, f)
    res = call("run", "rootless-test")
    assert res.returncode == 0, f"rootless run failed ({res.returncode}): {res.stderr}"
    lines = res.stdout.splitlines()
    assert lines[:2] == ["0", "0"]
    assert lines[2].split() == ["0", str(inner), "1"]
    assert lines[3].split() == ["0", str(gid if how == "user" else 0), "1"]
    # uid 0 of the container is the user on the host
    st = os.stat(os.path.join(b.rootfs, "tmp", "made-inside"))
    assert (st.st_uid, st.st_gid) == (uid, gid)
    # the state lived under the user's XDG_RUNTIME_DIR and is gone with the container
    assert os.listdir(xdg) == ["runtime"] and os.listdir(os.path.join(xdg, "runtime")) == []
    assert call("list", "-q").stdout == ""
