"""Hostile config.json: hypothesis generates valid, nearly valid and invalid configs
and ``runtime create`` runs on each in a fresh bundle.

The property, for every input: either a working container (state "created", its
init alive; then ``delete --force`` succeeds) or exit code 1 with exactly one line
on stderr and no Python in it; in both cases the host is exactly as before (leak
checker: no state entry, cgroup, mount, process or fd), nothing was created
outside the rootfs through ``..`` or symlinks, and ``list`` does not show it.

Inputs are built to be hostile to the runtime but never to the host: hooks run only
harmless programs, namespace paths never name a mount namespace, sysctls are
namespaced keys set to the host's current value, cgroupsPath stays under the run's
prefix and netDevices name interfaces that do not exist.

The fast lane runs ~30 s of examples; the long lane (scripts/reliability,
RELIABILITY_LONG=1) runs ``RELIABILITY_FUZZ_SECONDS`` (default 300; the script sets 240).
"""

import copy
import json
import os
import time

import pytest
from hypothesis import HealthCheck, Phase, given, reproduce_failure, settings, strategies as st

from . import relkit
from .conftest import new_checker

FAST_SECONDS = float(os.environ.get("RELIABILITY_FUZZ_FAST_SECONDS", "30"))
LONG_SECONDS = float(os.environ.get("RELIABILITY_FUZZ_SECONDS", "300"))
SECONDS = relkit.budget(FAST_SECONDS, LONG_SECONDS)
MAX_EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_MAX_EXAMPLES") or relkit.budget(400, 20000))
BIG = relkit.budget(20000, 200000)  # largest generated array / nesting depth
#: bound on the bytes of one generated array: a config is copied several times (dict,
#: JSON text, bytes; the runtime parses it too), so 200000 x 100 KB would exhaust memory
MAX_ARRAY_BYTES = 16 << 20


def capped(n, item):
    """``n`` items of ``item`` within MAX_ARRAY_BYTES."""
    return min(n, max(1, MAX_ARRAY_BYTES // max(1, len(repr(item)))))

#: failures already reported as runtime bugs and not fixed yet (each with an xfail
#: test): tolerated by the property so that the fuzzer keeps looking for new ones,
#: and counted.  (deep nesting, lone surrogates, unwrapped OSErrors: fixed, with
#: their regression tests below)
KNOWN_BUGS = []

MARK = "escape-mark"


class FuzzEnv:
    """The fuzz lane's directories: state root, bundles, and ``outside``, which
    symlinks in the rootfs point to and which must stay empty."""

    def __init__(self):
        self.dir = os.path.join(relkit.BASE, "fuzz")
        self.root = os.path.join(self.dir, "state")
        self.outside = os.path.join(self.dir, "outside")
        self.altroot = os.path.join(self.dir, "altroot")  # an empty root filesystem
        self.rootfs = relkit.shared_rootfs()
        os.makedirs(self.outside, exist_ok=True)
        os.makedirs(self.altroot, exist_ok=True)
        self.noexec = os.path.join(self.dir, "not-executable")
        with open(self.noexec, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        for name, target in (("evil-abs", self.outside),
                             ("evil-rel", "../" * 12 + self.outside.lstrip("/")),
                             ("evil-loop", "evil-loop"), ("evil-dotdot", ".."),
                             ("evil-root", self.altroot)):
            link = os.path.join(self.rootfs, name)
            if not os.path.lexists(link):
                os.symlink(target, link)
        self.rt = relkit.Rt(self.root, os.path.join(self.dir, "runtime.log"))
        # a config that loses linux.cgroupsPath gets the id, relative to the
        # runtime's own cgroups: watch there too
        self.idprefix = f"fz{relkit.TAG[3:9]}-"
        own = set()
        with open("/proc/self/cgroup") as f:
            for line in f:
                own.add(line.rstrip("\n").split(":", 2)[2].rstrip("/"))
        self.checker = new_checker([self.root])
        self.checker.prefixes += [f"{o}/{self.idprefix}" for o in sorted(own)]
        self.count = 0
        self.started = None
        self.failing = False
        self.outcomes = {}

    def escapes(self):
        """Anything named like the escape marker outside the rootfs."""
        found = [os.path.join(self.outside, n) for n in os.listdir(self.outside)]
        for top in ("/", "/tmp", self.dir, os.path.dirname(self.rootfs)):
            try:
                found += [os.path.join(top, n) for n in os.listdir(top) if MARK in n]
            except OSError:
                pass
        return found

    def clean_escapes(self):
        for path in self.escapes():
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    relkit.remove_tree(path)
                else:
                    os.unlink(path)
            except OSError:
                pass


_ENV = None


@pytest.fixture(scope="module")
def fuzz_env(rel_session):
    global _ENV
    _ENV = FuzzEnv()
    yield _ENV
    relkit.remove_tree(_ENV.dir)
    for name in ("evil-abs", "evil-rel", "evil-loop", "evil-dotdot", "evil-root"):
        try:
            os.unlink(os.path.join(_ENV.rootfs, name))
        except OSError:
            pass
    _ENV = None


# -- generators ------------------------------------------------------------------------
INTS = [0, 1, -1, 2, 7, 255, 1000, 1024, 4096, 65534, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1,
        2**32, 2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**31), -(2**63), 10**30]
WEIRD_STRINGS = ["", " ", "a", "..", "../..", "/", "//", "\t", "\n", "\u00e9t\u00e9", "\u2603",
                 "\ud800", "\udcff", "x" * 300, "x" * 5000, "a\\b", "a=b=c", "-", "--help",
                 "%s%n", "$(reboot)", "`id`", "*", "?"]
WRONG_TYPES = [None, True, False, 0, -1, 2**64, 1.5, -0.0, "", "x", [], {}, [[]], {"a": None},
               [1, "a", None]]


def _draws(data, strategy, label):
    return data.draw(strategy, label=label)


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...<{len(text)} chars>"


def pick(data, values, label):
    """One of ``values``; what hypothesis prints is a short name of it."""
    index = {}
    for i, v in enumerate(values):
        name = _short(v)
        index[name if name not in index else f"{name}#{i}"] = i
    # a copy: a mutable value (WRONG_TYPES' {} or []) put in one config and changed
    # there by a later mutator would change the list for every later example
    return copy.deepcopy(values[index[data.draw(st.sampled_from(list(index)), label=label)]])


class Doc(bytes):
    """config.json bytes that print short in tracebacks."""

    def __repr__(self):
        return f"<config.json, {len(self)} bytes: {bytes(self[:120])!r}...>"


def path_value(data, env, label):
    """A path inside the container, often hostile."""
    return pick(data, [
        "/x", "/tmp/x", "/mnt", "/proc", "/dev/null", "/", "", "relative/x", "x",
        f"/../../../../../../..{env.outside}/{MARK}", f"/evil-abs/{MARK}", f"/evil-rel/{MARK}",
        f"/evil-loop/{MARK}", f"/evil-dotdot/../{MARK}", f"/tmp/../../{MARK}",
        "/dev/../../../" + MARK, "/a/" + "b/" * 300, "/" + "y" * 300, "/a\0b", "/\u00e9", "/\udcff",
        "/proc/self", "/proc/sys/kernel/" + MARK, "/sys/" + MARK, "/dev/pts/ptmx", "/etc/passwd",
        "/bin/busybox", "/.", "/./x/./", "/x/..",
    ], label)


def mutate_hostname(data, c, env):
    c["hostname"] = pick(data, ["fuzz", "a" * 64, "a" * 65, "", "bad host", "\ud800", "h\u00e9"],
                         "hostname")


def mutate_env(data, c, env):
    proc = c.setdefault("process", {})
    n = pick(data, [1, 5, 100, BIG], "env size")
    item = pick(data, ["A=b", "NOEQUALS", "=v", "A=\u2603", "A=" + "v" * 10000, "PATH=", "\ud800=x",
                       "A=b\0c"], "env item")
    n = capped(n, item)
    proc["env"] = list(proc.get("env") or []) + [item.replace("A", f"A{i}", 1) for i in range(n)]


def mutate_annotations(data, c, env):
    n = pick(data, [0, 1, 50, BIG], "annotation count")
    value = pick(data, ["v", "", "v" * 100000, "\u2603", 1, None, ["x"]], "annotation value")
    c["annotations"] = {f"k{i}": value for i in range(capped(n, value))}


def mutate_rlimits(data, c, env):
    kinds = ["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", "RLIMIT_STACK", "RLIMIT_AS",
             "RLIMIT_CPU", "RLIMIT_BOGUS", "", "rlimit_nofile", "RLIMIT_RTPRIO"]
    c.setdefault("process", {})["rlimits"] = [
        {"type": pick(data, kinds, "rlimit type"), "soft": pick(data, INTS, "soft"),
         "hard": pick(data, INTS, "hard")}
        for _ in range(pick(data, [1, 2, 3], "rlimit count"))]


NS_TYPES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]
# never "mnt": joining the host's mount namespace would pivot_root the host
NS_FILES = ["net", "ipc", "uts", "pid", "cgroup", "user", "time"]


def mutate_namespaces(data, c, env):
    lin = c.setdefault("linux", {})
    current = [ns["type"] for ns in lin.get("namespaces", [])]
    keep = [t for t in NS_TYPES if data.draw(st.booleans(), label=f"keep {t}")]
    choice = pick(data, ["drop", "add", "path", "bogus", "dup"], "ns op")
    if choice == "drop":
        lin["namespaces"] = [{"type": t} for t in current if t in keep]
    elif choice == "add":
        lin["namespaces"] = [{"type": t} for t in dict.fromkeys(current + keep)]
    elif choice == "path":
        kind = pick(data, [t for t in NS_TYPES if t != "mount"], "ns type")
        other = pick(data, NS_FILES, "ns file")
        target = pick(data, [f"/proc/self/ns/{other}", "/nonexistent", "/etc/passwd", "/dev/null",
                             env.outside, "relative", "", f"/proc/1/ns/{other}"], "ns path")
        if kind == "user" and target.endswith("/user"):
            target = "/nonexistent"  # the host's user ns: joining it is a no-op, not hostile
        lin["namespaces"] = [ns for ns in lin.get("namespaces", []) if ns["type"] != kind] + [
            {"type": kind, "path": target}]
    elif choice == "bogus":
        lin.setdefault("namespaces", []).append(
            {"type": pick(data, ["bogus", "", "PID", "mnt", "net", 7, None], "bogus ns")})
    else:
        if current:
            lin["namespaces"].append({"type": current[0]})
    kinds = {ns.get("type") for ns in lin.get("namespaces", []) if isinstance(ns, dict)}
    if "user" in kinds and data.draw(st.booleans(), label="user maps"):
        size = pick(data, [0, 1, 65536, 2**32, 2**32 - 1], "map size")
        lin["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": size}]
        lin["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": size}]


MOUNT_TYPES = ["tmpfs", "proc", "bind", "none", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2",
               "nosuchfs", "", "overlay", "ext4"]
MOUNT_OPTIONS = ["ro", "rw", "bind", "rbind", "nosuid", "noexec", "nodev", "private", "rprivate",
                 "shared", "rshared", "slave", "rslave", "unbindable", "runbindable", "size=1k",
                 "size=abc", "size=-1", "mode=999999", "mode=0755", "uid=-1", "uid=4294967296",
                 "bogus", "idmap", "ridmap", "recursive", "nosymfollow", "tmpcopyup", "rro",
                 "rnoexec", "strictatime", "noatime", "=", "", "a" * 5000, "\ud800", "remount"]


def mutate_mounts(data, c, env):
    sources = ["tmpfs", "proc", "none", "/nonexistent", env.outside, "/dev/null", "rel-src",
               "../../../../etc", env.noexec, "", "/proc/self/fd/0", "sysfs", "\udcff"]
    mounts = c.setdefault("mounts", [])
    n = pick(data, [1, 2, 3, 500, BIG // 10], "mount count")
    dest = path_value(data, env, "mount destination")
    mtype = pick(data, MOUNT_TYPES, "mount type")
    source = pick(data, sources, "mount source")
    options = [pick(data, MOUNT_OPTIONS, f"option {i}")
               for i in range(data.draw(st.integers(0, 5), label="option count"))]
    drop_type = data.draw(st.booleans(), label="drop type")
    for i in range(n):  # (one draw per decision, never per item: draws must stay few)
        m = {"destination": dest if n < 4 else f"/m{i}", "type": mtype, "source": source,
             "options": options}
        if drop_type:
            del m["type"]
        mounts.append(m)
    if data.draw(st.booleans(), label="rootfs propagation"):
        c.setdefault("linux", {})["rootfsPropagation"] = pick(
            data, ["private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable",
                   "bogus", ""], "propagation")


def mutate_paths(data, c, env):
    lin = c.setdefault("linux", {})
    key = pick(data, ["maskedPaths", "readonlyPaths"], "path list")
    n = pick(data, [1, 3, 2000, BIG], "path count")
    p = path_value(data, env, "masked path")
    lin[key] = [p if n < 4 else f"{p}{i}" for i in range(capped(n, p))]


def mutate_resources(data, c, env):
    res = c.setdefault("linux", {}).setdefault("resources", {})
    which = pick(data, ["memory", "cpu", "pids", "blkio", "hugepageLimits", "devices", "unified",
                        "network", "rdma"], "resource")
    if which == "memory":
        res["memory"] = {k: pick(data, [-2, -1, 0, 1, 4096, 1 << 20, 64 << 20, 2**62, 2**63 - 1],
                                 k) for k in data.draw(st.lists(st.sampled_from(
                                     ["limit", "reservation", "swap", "kernel", "kernelTCP"]),
                                     min_size=1, unique=True), label="memory keys")}
        if data.draw(st.booleans(), label="swappiness"):
            res["memory"]["swappiness"] = pick(data, [0, 100, 101, 2**64 - 1], "swappiness")
        if data.draw(st.booleans(), label="oom killer"):
            res["memory"]["disableOOMKiller"] = True
    elif which == "cpu":
        res["cpu"] = {
            "shares": pick(data, [0, 1, 2, 1024, 2**62], "shares"),
            "quota": pick(data, [-1, 0, 1, 1000, 2**62], "quota"),
            "period": pick(data, [0, 1, 999, 1000, 100000, 2**62], "period"),
            "cpus": pick(data, ["0", "0-1", "0-100", "1-0", "a", "", "0,1", "99", "0-"], "cpus"),
            "mems": pick(data, ["0", "1", "0-5", "", "x"], "mems"),
        }
        if data.draw(st.booleans(), label="rt"):
            res["cpu"]["realtimeRuntime"] = pick(data, [-1, 0, 1000, 2**62], "rt runtime")
            res["cpu"]["realtimePeriod"] = pick(data, [0, 1000, 2**62], "rt period")
    elif which == "pids":
        res["pids"] = {"limit": pick(data, [-2, -1, 0, 1, 2, 10, 2**62], "pids")}
    elif which == "blkio":
        res["blockIO"] = {"weight": pick(data, [0, 1, 10, 1000, 1001, 65535], "weight"),
                          "throttleReadBpsDevice": [{"major": pick(data, [8, 999, 2**32], "maj"),
                                                     "minor": 0, "rate": 1}]}
    elif which == "hugepageLimits":
        res["hugepageLimits"] = [{"pageSize": pick(data, ["2MB", "1GB", "bogus", "4KB", ""], "hp"),
                                  "limit": pick(data, [0, 1, 2**62], "hp limit")}]
    elif which == "devices":
        rule = {"allow": data.draw(st.booleans(), label="allow"),
                "type": pick(data, ["a", "b", "c", "u", "p", "x", ""], "dev type"),
                "major": pick(data, [-1, 0, 1, 5, 2**32], "major"),
                "minor": pick(data, [-1, 0, 3, 2**32], "minor"),
                "access": pick(data, ["rwm", "r", "", "xyz", "rrrr"], "access")}
        res["devices"] = [dict(rule) for _ in range(pick(data, [1, 2, 1000], "rule count"))]
    elif which == "unified":
        res["unified"] = {pick(data, ["memory.max", "pids.max", "cgroup.procs", "../x", "bogus",
                                      "cpu.weight"], "unified key"):
                          pick(data, ["1", "max", "", "x" * 5000], "unified value")}
    elif which == "network":
        res["network"] = {"classID": pick(data, [0, 1, 2**32 - 1], "classid"),
                          "priorities": [{"name": "nosuchdev0", "priority": 1}]}
    else:
        res["rdma"] = {"mlx_bogus": {"hcaHandles": 1, "hcaObjects": 2**32 - 1}}


def mutate_hooks(data, c, env):
    safe = [
        {"path": "/bin/true"}, {"path": "/bin/false"}, {"path": "/nonexistent/hook"},
        {"path": "relative/hook"}, {"path": "/tmp"}, {"path": env.noexec}, {"path": ""},
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]},
        {"path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null; echo out; echo err >&2; exit 1"]},
        # exec: a forked child would outlive the timeout (see
        # test_hook_timeout_leaves_no_process)
        {"path": "/bin/sh", "args": ["sh", "-c", "exec sleep 5"], "timeout": 1},
        {"path": "/bin/sh", "args": ["sh", "-c", "head -c 1000000 /dev/zero"]},
        {"path": "/bin/true", "timeout": pick(data, [0, -1, 2**63, 1], "hook timeout")},
        {"path": "/bin/true", "args": []},
        {"path": "/bin/true", "env": ["NOEQ", "A=\ud800"]},
        {"path": "/bin/true", "args": ["true"] + ["x" * 1000] * 3000},
    ]
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
             "poststop", "bogus"]
    hooks = {}
    for _ in range(pick(data, [1, 2, 3], "hook kinds")):
        hook = dict(pick(data, safe, "hook"))
        hook["env"] = list(hook.get("env", [])) + [relkit.leakcheck.tag_env()]
        hooks.setdefault(pick(data, kinds, "hook kind"), []).append(hook)
    c["hooks"] = hooks


def mutate_process(data, c, env):
    proc = c.setdefault("process", {})
    field = pick(data, ["user", "gids", "umask", "caps", "cwd", "args", "oom", "sched", "terminal",
                        "drop", "ionice", "affinity", "console", "labels"], "process field")
    if field == "user":
        proc["user"] = {"uid": pick(data, INTS, "uid"), "gid": pick(data, INTS, "gid")}
    elif field == "gids":
        proc.setdefault("user", {"uid": 0, "gid": 0})["additionalGids"] = [
            pick(data, INTS, "gid")] * pick(data, [1, 65537, BIG], "gids count")
    elif field == "umask":
        proc.setdefault("user", {"uid": 0, "gid": 0})["umask"] = pick(
            data, [0, 0o777, 0o1000, -1, 2**32], "umask")
    elif field == "caps":
        names = ["CAP_SYS_ADMIN", "CAP_BOGUS", "cap_kill", "", "CAP_LAST_CAP", "CAP_CHECKPOINT_RESTORE"]
        proc["capabilities"] = {k: [pick(data, names, "cap")] for k in data.draw(st.lists(
            st.sampled_from(["bounding", "effective", "permitted", "inheritable", "ambient",
                             "bogus"]), min_size=1, unique=True), label="cap sets")}
    elif field == "cwd":
        proc["cwd"] = path_value(data, env, "cwd")
    elif field == "args":
        proc["args"] = pick(data, [[], [""], ["/nonexistent"], ["/bin"], ["../../../bin/sh"],
                                   ["sh"] + ["x"] * BIG, ["sh\0x"], ["/evil-abs/sh"], ["\udcff"]],
                            "args")
    elif field == "oom":
        proc["oomScoreAdj"] = pick(data, [-1001, -1000, 0, 1000, 1001, 2**31], "oom")
    elif field == "sched":
        proc["scheduler"] = {"policy": pick(data, ["SCHED_OTHER", "SCHED_FIFO", "SCHED_RR",
                                                   "SCHED_DEADLINE", "SCHED_IDLE", "SCHED_BOGUS"],
                                            "policy"),
                             "priority": pick(data, [0, 1, 99, 100, -1], "priority")}
    elif field == "terminal":
        proc["terminal"] = True
        proc["consoleSize"] = {"height": pick(data, INTS, "h"), "width": 80}
    elif field == "drop":
        c.pop("process", None)
    elif field == "ionice":
        proc["ioPriority"] = {"class": pick(data, ["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
                                                   "IOPRIO_CLASS_IDLE", "bogus"], "ioclass"),
                              "priority": pick(data, [0, 7, 8, -1], "ioprio")}
    elif field == "affinity":
        proc["execCPUAffinity"] = {"initial": pick(data, ["0", "0-100", "x", "1-0"], "aff"),
                                   "final": pick(data, ["0", "5", ""], "aff final")}
    elif field == "console":
        proc["consoleSize"] = {"height": -1, "width": 2**64}
    else:
        proc["apparmorProfile"] = pick(data, ["unconfined", "bogus", ""], "apparmor")
        proc["selinuxLabel"] = pick(data, ["", "system_u:system_r:bogus:s0"], "selinux")


def mutate_root(data, c, env):
    # never the host's / (the runtime would make mount points there)
    c["root"] = {"path": pick(data, [env.rootfs, "rootfs", "", "/nonexistent", env.altroot,
                                     "/dev/null", "../../../../../nonexistent",
                                     env.rootfs + "/evil-root", env.rootfs + "/../rootfs",
                                     "\ud800"], "root path"),
                 "readonly": data.draw(st.booleans(), label="readonly")}


def mutate_linux_misc(data, c, env):
    lin = c.setdefault("linux", {})
    which = pick(data, ["devices", "sysctl", "cgroupsPath", "seccomp", "netDevices", "timeOffsets",
                        "personality", "intelRdt", "mountLabel", "memoryPolicy"], "linux field")
    if which == "devices":
        lin["devices"] = [{"path": path_value(data, env, "device path"),
                           "type": pick(data, ["c", "b", "u", "p", "x"], "dtype"),
                           "major": pick(data, [0, 1, 5, -1, 2**32], "dmajor"),
                           "minor": pick(data, [0, 3, -1, 2**32], "dminor"),
                           "fileMode": pick(data, [0o666, 0o4777, 0o170000, 2**32], "mode"),
                           "uid": pick(data, [0, 2**32], "duid")}]
    elif which == "sysctl":
        # namespaced keys, each set to the host's current value: even if the runtime
        # wrote it to the host, nothing would change
        lin["sysctl"] = {pick(data, ["kernel.msgmax", "kernel.shmmni", "net.bogus.key", "kernel",
                                     "../../etc/passwd", "kernel/msgmax", "fs.mqueue.x",
                                     "kernel.domainname", "vm.swappiness"], "sysctl key"):
                         pick(data, ["8192", "4096", "", "x" * 5000, "-1"], "sysctl value")}
        for key in list(lin["sysctl"]):
            if key in ("kernel.msgmax", "kernel/msgmax"):
                lin["sysctl"][key] = "8192" if _host_sysctl("kernel.msgmax") == "8192" else "bogus"
            elif key == "kernel.shmmni":
                lin["sysctl"][key] = _host_sysctl("kernel.shmmni") or "bogus"
            elif key == "vm.swappiness":
                lin["sysctl"][key] = _host_sysctl("vm.swappiness") or "bogus"
    elif which == "cgroupsPath":
        cid = lin["cgroupsPath"].rsplit("/", 1)[-1]
        lin["cgroupsPath"] = pick(data, [
            f"{relkit.CGROUP_PREFIX}/n1/n2/n3/{cid}", f"{relkit.CGROUP_PREFIX}/{cid}/",
            f"{relkit.CGROUP_PREFIX}//{cid}", f"{relkit.CGROUP_PREFIX}/../{cid}",
            f"{relkit.CGROUP_PREFIX}/{cid}/..", f"{relkit.CGROUP_PREFIX}/{'a' * 300}",
            f"{relkit.CGROUP_PREFIX}/{cid}\0x", f"{relkit.CGROUP_PREFIX}/{cid}/cgroup.procs",
            f"{relkit.CGROUP_PREFIX}/{cid}:x", f"{relkit.CGROUP_PREFIX}/ {cid}"], "cgroupsPath")
    elif which == "seccomp":
        lin["seccomp"] = {
            "defaultAction": pick(data, ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_NOTIFY",
                                         "SCMP_ACT_BOGUS", "SCMP_ACT_KILL"], "default action"),
            "architectures": [pick(data, ["SCMP_ARCH_X86_64", "SCMP_ARCH_BOGUS"], "arch")],
            "syscalls": [{"names": [pick(data, ["getpid", "bogus_syscall", "", "read"], "sc")],
                          "action": pick(data, ["SCMP_ACT_ERRNO", "SCMP_ACT_NOTIFY",
                                                "SCMP_ACT_ALLOW"], "sc action"),
                          "args": [{"index": pick(data, [0, 5, 6], "arg idx"), "value": 1,
                                    "op": pick(data, ["SCMP_CMP_EQ", "SCMP_CMP_BOGUS"], "op")}]}],
        }
        if data.draw(st.booleans(), label="listener"):
            lin["seccomp"]["listenerPath"] = pick(data, ["/nonexistent.sock", env.noexec], "lp")
    elif which == "netDevices":
        lin["netDevices"] = {pick(data, ["rlbogus0", "", "a" * 16, "a/b"], "ifname"): {}}
    elif which == "timeOffsets":
        lin["timeOffsets"] = {pick(data, ["monotonic", "boottime", "realtime"], "clock"):
                              {"secs": pick(data, INTS, "secs"), "nanosecs": pick(data, [0, 10**9],
                                                                                  "ns")}}
    elif which == "personality":
        lin["personality"] = {"domain": pick(data, ["LINUX", "LINUX32", "BOGUS"], "persona")}
    elif which == "intelRdt":
        lin["intelRdt"] = {"closID": pick(data, ["x", "..", "/"], "clos"), "l3CacheSchema": "L3:0=f"}
    elif which == "mountLabel":
        lin["mountLabel"] = "system_u:object_r:bogus:s0"
    else:
        lin["memoryPolicy"] = {"mode": pick(data, ["MPOL_BIND", "MPOL_DEFAULT", "MPOL_BOGUS"], "mp"),
                               "nodes": pick(data, ["0", "5", "", "0-99"], "nodes")}


_SYSCTL_CACHE = {}


def _host_sysctl(key):
    if key not in _SYSCTL_CACHE:
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as f:
                _SYSCTL_CACHE[key] = f.read().strip()
        except OSError:
            _SYSCTL_CACHE[key] = ""
    return _SYSCTL_CACHE[key]


def _leaves(doc, path=()):
    if isinstance(doc, dict):
        for k, v in list(doc.items())[:50]:
            yield from _leaves(v, path + (k,))
        yield path
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:20]):
            yield from _leaves(v, path + (i,))
        yield path
    else:
        yield path


def _set(doc, path, value):
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


def mutate_wrong_type(data, c, env):
    path = pick(data, [p for p in _leaves(c) if p], "leaf")
    _set(c, path, pick(data, WRONG_TYPES + WEIRD_STRINGS[:12], "wrong value"))


def mutate_delete_key(data, c, env):
    path = pick(data, [p for p in _leaves(c) if p], "deleted")
    target = c
    for p in path[:-1]:
        target = target[p]
    del target[path[-1]]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                      max_size=4),
    max_leaves=20)


def mutate_unknown(data, c, env):
    target = pick(data, ["top", "process", "linux", "root"], "where")
    doc = c if target == "top" else c.setdefault(target, {})
    if isinstance(doc, dict):
        doc[pick(data, ["x-extension", "bogus", "ociVersion2"], "key")] = data.draw(json_values,
                                                                                    label="value")


def mutate_version(data, c, env):
    c["ociVersion"] = pick(data, ["1.0.0", "1.3.0", "1.3.0-rc.1", "2.0.0", "", "1", "banana", 1,
                                  "0.9.0", "1.99.99"], "ociVersion")


MUTATORS = [mutate_hostname, mutate_env, mutate_annotations, mutate_rlimits, mutate_namespaces,
            mutate_mounts, mutate_paths, mutate_resources, mutate_hooks, mutate_process,
            mutate_root, mutate_linux_misc, mutate_wrong_type, mutate_delete_key, mutate_unknown,
            mutate_version]


def raw_document(data, c):
    """Bytes that are not (quite) a JSON config."""
    text = json.dumps(c)
    kind = pick(data, ["non-utf8", "latin1", "utf16", "bom", "truncated", "empty", "scalar",
                       "deep-array", "deep-object", "long-number", "nan", "duplicate-keys",
                       "control-chars", "lone-surrogate", "trailing-garbage", "huge-array"],
                "raw kind")
    if kind == "non-utf8":
        at = data.draw(st.integers(0, len(text)), label="at")
        return text[:at].encode() + b"\xff\xfe\xc0" + text[at:].encode(), kind
    if kind == "latin1":
        return text.replace('"runtime"', '"r\u00e9\u00e9"').encode("latin-1", "replace"), kind
    if kind == "utf16":
        return text.encode("utf-16"), kind
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode(), kind
    if kind == "truncated":
        return text.encode()[:data.draw(st.integers(0, len(text) - 1), label="cut")], kind
    if kind == "empty":
        return pick(data, [b"", b" ", b"\n", b"null", b"[]", b"42", b'"x"', b"{}", b"true"],
                    "empty"), kind
    depth = pick(data, [100, 990, 1000, 5000, BIG], "depth")
    if kind == "deep-array":
        return ('{"x":' + "[" * depth + "]" * depth + "," + text[1:]).encode(), kind
    if kind == "deep-object":
        return ('{"x":' + '{"a":' * depth + "1" + "}" * depth + "," + text[1:]).encode(), kind
    if kind == "long-number":
        return text.replace('"uid": 0', '"uid": ' + "9" * pick(data, [20, 5000], "digits")
                            ).encode(), kind
    if kind == "nan":
        return text.replace('"uid": 0', '"uid": ' + pick(data, ["NaN", "Infinity", "-Infinity",
                                                                "1e999", "0.0", "-0"], "n")
                            ).encode(), kind
    if kind == "duplicate-keys":
        return text.replace('{"ociVersion"', '{"ociVersion": 7, "ociVersion"', 1).encode(), kind
    if kind == "control-chars":
        return text.replace('"runtime"', '"ru\x00n\x01"').encode(), kind
    if kind == "lone-surrogate":
        return text.replace('"runtime"', '"\\ud800"').replace('"/tmp"', '"/\\udfff"').encode(), kind
    if kind == "trailing-garbage":
        return text.encode() + pick(data, [b"}", b" x", b"\0", b"{}"], "garbage"), kind
    return text.replace('"env": [', '"env": [' + '"A=b",' * BIG, 1).encode(), kind


def _apply(mutator, data, config, env):
    """A mutator may find the document already broken by another (a list where it
    wants an object): it then does nothing."""
    try:
        mutator(data, config, env)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError):
        pass


def generate(data, env, cid):
    """(bytes, description) of one config for container ``cid``."""
    config = relkit.make_config(cid)
    family = pick(data, ["valid-ish", "nearly", "nearly", "raw"], "family")
    applied = []
    if family == "raw":
        for m in data.draw(st.lists(st.sampled_from(MUTATORS[:12]), max_size=1), label="pre"):
            _apply(m, data, config, env)
            applied.append(m.__name__[7:])
        raw, kind = raw_document(data, config)
        return raw, f"raw:{kind}" + (f"+{applied[0]}" if applied else "")
    pool = MUTATORS[:12] if family == "valid-ish" else MUTATORS
    for m in data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4), label="mutators"):
        _apply(m, data, config, env)
        applied.append(m.__name__[7:])
    try:
        raw = json.dumps(config, ensure_ascii=data.draw(st.booleans(), label="ascii")).encode(
            "utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        raw = json.dumps(config).encode()
    return raw, f"{family}:{'+'.join(applied)}"


# -- the property ------------------------------------------------------------------------
def known_bug(line):
    for name, pattern in KNOWN_BUGS:
        if pattern.search(line):
            return name
    return None


def check_one(env, raw, what):
    """Create from ``raw`` in a fresh bundle; assert the property; return the outcome."""
    env.count += 1
    env.last_error = ""
    cid = f"{env.idprefix}{env.count:06d}"
    bundle = relkit.write_bundle(env.dir, cid, data=raw)
    raw = Doc(raw)
    before = env.checker.snapshot()
    try:
        res = env.rt("create", "--bundle", bundle, cid, timeout=30)
        if res.rc == 0:
            outcome = "created"
            state = env.rt.state(cid)
            assert state and state["status"] in ("created", "stopped"), \
                f"{what}: after create: {state}"
            if state["status"] == "created" and not relkit.alive(state["pid"]):
                # died between the two looks: the state must now say so
                state = env.rt.state(cid)
            if state["status"] == "stopped":
                # the helper failed after create returned (RLIMIT_NOFILE 0: it cannot
                # open the exec fifo; E2BIG: the environment is too large to exec):
                # the state must say so, with no pid
                outcome = "created, died at once"
                assert state["pid"] == 0, f"{what}: stopped with a pid: {state}"
            else:
                assert state["status"] == "created", f"{what}: after create: {state}"
            deleted = env.rt("delete", "--force", cid, timeout=20)
            assert deleted.rc == 0, f"{what}: delete --force after a create: {deleted}"
        else:
            line = res.err.strip()
            env.last_error = line
            bug = known_bug(line)
            if bug:
                outcome = f"known bug: {bug}"
                relkit.FIGURES.add(f"fuzz: known-bug hits ({bug})")
            else:
                outcome = "refused"
                assert res.rc == 1, f"{what}: exit code {res.rc}: {res}"
                relkit.check_error(res)
            left = env.rt("list", "-q")
            listed = left.rc == 0 and cid in left.out.split()
            if listed:
                env.rt("delete", "--force", cid)
            assert left.rc == 0 and not listed, f"{what}: failed create is listed: {left}"
        leaks = env.checker.check(before, timeout=3)
        escaped = env.escapes()
        if leaks:
            env.checker.cleanup(leaks)
        if escaped:
            env.clean_escapes()
        assert not leaks, f"{what} ({outcome}): {leaks}"
        assert not escaped, f"{what} ({outcome}): created outside the rootfs: {escaped}"
        return outcome
    except BaseException:
        # leave nothing for the next example, whatever went wrong
        env.rt("delete", "--force", cid)
        env.checker.cleanup(env.checker.diff(before))
        env.clean_escapes()
        raise
    finally:
        relkit.remove_tree(bundle)


@pytest.fixture
def fuzz_budget(fuzz_env):
    fuzz_env.started = time.monotonic()
    yield fuzz_env
    stats = fuzz_env.outcomes
    relkit.FIGURES.put("fuzz: configs tried", sum(stats.values()))
    for key, n in sorted(stats.items()):
        relkit.FIGURES.put(f"fuzz: outcome {key}", n)


# No shrinking unless RELIABILITY_SHRINK=1: each step runs the runtime, and shrinking
# is not bounded by the budget; a failure is reported as generated, with the draws and
# a description of the mutations.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate) + (
    (Phase.shrink,) if os.environ.get("RELIABILITY_SHRINK") == "1" else ())


def _maybe_reproduce(fn):
    """RELIABILITY_REPRODUCE="<version> <blob>" replays one failure hypothesis printed."""
    spec = os.environ.get("RELIABILITY_REPRODUCE", "").split()
    return reproduce_failure(spec[0], spec[1].encode())(fn) if len(spec) == 2 else fn


class BudgetSpent(BaseException):
    """Ends the hypothesis run when the time budget is spent: not an Exception, so
    hypothesis lets it through at once instead of taking it for a failure.  (Returning
    instead would let hypothesis generate up to max_examples more configs, each
    costly, until the lane times out.)"""


def test_hostile_config(fuzz_budget):
    try:
        hostile_config(fuzz_budget=fuzz_budget)
    except BudgetSpent:
        pass


@_maybe_reproduce
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, print_blob=True,
          suppress_health_check=list(HealthCheck), phases=PHASES)
@given(data=st.data())
def hostile_config(fuzz_budget, data):
    env = fuzz_budget
    # draw first, whatever the budget: the draws of an example must not depend on time
    raw, what = generate(data, env, f"{env.idprefix}{env.count + 1:06d}")
    if time.monotonic() - env.started > SECONDS and not env.failing:
        raise BudgetSpent
    family = what.split(":", 1)[0]
    try:
        outcome = check_one(env, raw, what)
        if os.environ.get("RELIABILITY_FUZZ_LOG"):
            with open(os.environ["RELIABILITY_FUZZ_LOG"], "a") as f:
                f.write(json.dumps({"what": what, "outcome": outcome, "error": env.last_error})
                        + "\n")
    except BaseException:
        env.failing = True  # replays and shrinking must run whatever the budget
        raise
    key = f"{family}/{outcome}"
    env.outcomes[key] = env.outcomes.get(key, 0) + 1


# -- the bugs the fuzzer found (all fixed), one regression test each -----------------------------
def _one(rel, raw, cid):
    bundle = relkit.write_bundle(rel.dir, cid, data=raw)
    res = rel.rt("create", "--bundle", bundle, cid)
    relkit.check_error(res)
    return res


def test_deeply_nested_json_is_a_config_error(rel):
    raw = ('{"x":' + "[" * 100000 + "]" * 100000 + "," + json.dumps(
        relkit.make_config("deep"))[1:]).encode()
    res = _one(rel, raw, "deep")
    assert res.rc == 1 and res.error.startswith("config.json"), res


def test_root_path_that_is_a_file_is_reported_in_runc_words(rel):
    config = relkit.make_config("rootfile")
    config["root"]["path"] = "/dev/null"
    res = _one(rel, json.dumps(config).encode(), "rootfile")
    assert res.rc == 1, res


def test_lone_surrogate_in_hostname_is_a_config_error(rel):
    config = relkit.make_config("sur")
    raw = json.dumps(config).replace('"runtime"', '"\\ud800"').encode()
    res = _one(rel, raw, "sur")
    assert res.rc == 1 and "config.json" in res.error, res


def test_symlink_and_dotdot_destinations_stay_in_the_rootfs(rel, fuzz_env):
    """The escape routes the fuzzer tries, all at once, on a container that works."""
    config = relkit.make_config("esc")
    for i, dest in enumerate([f"/evil-abs/{MARK}", f"/evil-rel/{MARK}",
                              f"/../../../../..{fuzz_env.outside}/{MARK}x",
                              f"/evil-dotdot/../{MARK}y"]):
        config["mounts"].append({"destination": dest + str(i), "type": "tmpfs",
                                 "source": "tmpfs"})
    config["process"]["cwd"] = f"/evil-abs/{MARK}cwd"
    bundle = relkit.write_bundle(rel.dir, "esc", config)
    res = rel.rt("create", "--bundle", bundle, "esc")
    relkit.check_error(res)
    escaped = fuzz_env.escapes()
    fuzz_env.clean_escapes()
    rel.rt("delete", "--force", "esc")
    assert not escaped, f"created outside the rootfs: {escaped}"


def test_start_container_hook_does_not_deadlock(rel):
    """Regression (found by the fuzzer, fixed in d073cea: the children close the
    runtime's fds): the init waiting in Python for start kept the state lock."""
    config = relkit.make_config("hook", ["true"])
    config["hooks"] = {"startContainer": [{"path": "/bin/true"}]}
    relkit.assert_ok(rel.create("hook", config))
    pid = rel.rt.state("hook")["pid"]
    try:
        res = rel.rt("start", "hook", timeout=10)
    except AssertionError:
        res = None
    finally:
        if relkit.alive(pid):
            os.kill(pid, 9)  # our container's init: lets the lock go
        rel.rt("delete", "--force", "hook")
    assert res is not None, "start hung on the state lock held by the container's init"
    assert res.rc == 0, res


def test_hook_timeout_leaves_no_process(rel):
    config = relkit.make_config("hookto")
    config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 3; :"],
                                          "timeout": 1, "env": [relkit.leakcheck.tag_env()]}]}
    res = rel.create("hookto", config, check=False)
    relkit.check_error(res, allowed=["timed out", "timeout"])
    leaks = rel.checker.check(rel.checker.snapshot(), timeout=0)  # nothing new since create
    orphans = [p for p in relkit.leakcheck.processes([relkit.CGROUP_PREFIX], relkit.TAG,
                                                      os.getpid()).values()
               if "sleep 3" in p.cmdline]
    for p in orphans:
        os.kill(p.pid, 9)
    assert not leaks and not orphans, f"left by the timed-out hook: {[p.describe() for p in orphans]}"
