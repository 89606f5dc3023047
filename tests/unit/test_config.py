"""runtime.config: reading config.json, and one test per validation rule with the
message it gives."""

import copy
import json
import os
import pathlib

import pytest

from runtime import OCI_VERSION, config
from runtime.errors import ConfigError

CONFIGS = pathlib.Path(__file__).resolve().parent / "configs"
BASE = json.loads((CONFIGS / "runc-spec.json").read_text())  # pid network ipc uts mount namespaces


def error_of(mutate):
    c = copy.deepcopy(BASE)
    mutate(c)
    with pytest.raises(ConfigError) as info:
        config.validate(c)
    message = str(info.value)
    assert "\n" not in message
    return message


def valid(mutate):
    c = copy.deepcopy(BASE)
    mutate(c)
    config.validate(c)


def linux(**kw):
    return lambda c: c["linux"].update(kw)


def namespaces(*types, **paths):
    entries = [{"type": t} for t in types] + [{"type": t, "path": p} for t, p in paths.items()]
    return lambda c: c["linux"].update(namespaces=entries)


def add_namespace(type, **kw):
    return lambda c: c["linux"]["namespaces"].append({"type": type, **kw})


def syscalls(*rules):
    return linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules)})


def both(*mutations):
    def apply(c):
        for m in mutations:
            m(c)
    return apply


# --- load --------------------------------------------------------------------


def test_load_returns_the_document(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(BASE))
    assert config.load(str(tmp_path)) == BASE


@pytest.mark.parametrize("content, message", [
    (None, "config.json: JSON specification file config.json not found"),
    ('{\n  "ociVersion": "1.0.0",\n}',
     "config.json: invalid JSON: Expecting property name enclosed in double quotes: "
     "line 3 column 1 (char 27)"),
    ("", "config.json: invalid JSON: Expecting value: line 1 column 1 (char 0)"),
    (b"\xff{}", "config.json: invalid JSON: invalid UTF-8: line 1 column 1 (char 0)"),
    ("{} {}", "config.json: invalid JSON: Extra data: line 1 column 3 (char 2)"),
    ("[]", "config.json: [] is not of type object"),
    ('{"ociVersion": "1.0.0"}', 'config.json: "root" is required'),
])
def test_load_errors(tmp_path, content, message):
    if content is not None:
        data = content if isinstance(content, bytes) else content.encode()
        (tmp_path / "config.json").write_bytes(data)
    with pytest.raises(ConfigError) as info:
        config.load(str(tmp_path))
    assert str(info.value) == message


def test_load_unreadable(tmp_path):
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ConfigError) as info:
        config.load(str(tmp_path))
    assert str(info.value) == "config.json: cannot read: is a directory"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.json") if "features" not in p.name))
def test_fixtures_valid(name):
    config.validate(json.loads((CONFIGS / name).read_text()))


# --- schema rules surface with their path -------------------------------------------


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["linux"]["namespaces"].append({"type": "foo"}),
     'linux.namespaces[5].type: "foo" is not one of pid, network, mount, ipc, uts, user, cgroup, time'),
    (lambda c: c["process"].update(cwd="tmp"), "process.cwd: must be an absolute path"),
    (lambda c: c["process"].update(args=[]), "process.args: must not be empty"),
    (lambda c: c["process"].pop("args"), 'process: "args" is required'),
    (lambda c: c["process"]["user"].update(uid=1.0), "process.user.uid: 1.0 is not of type integer"),
    (lambda c: c["mounts"][3].update(destination=""), "mounts[3].destination: must not be empty"),
    (linux(maskedPaths=["proc/kcore"]), "linux.maskedPaths[0]: must be an absolute path"),
    (linux(readonlyPaths=["/proc/sys", "sys"]), "linux.readonlyPaths[1]: must be an absolute path"),
    (namespaces("mount", network="var/run/netns/x"), "linux.namespaces[1].path: must be an absolute path"),
    (linux(devices=[{"type": "c", "path": "dev/x", "major": 1, "minor": 3}]),
     "linux.devices[0].path: must be an absolute path"),
    (linux(devices=[{"type": "x", "path": "/dev/x"}]), 'linux.devices[0].type: "x" is not one of c, b, u, p'),
    (linux(devices=[{"type": "b", "path": "/dev/x", "minor": 1}]), 'linux.devices[0]: "major" is required'),
    (linux(devices=[{"type": "c", "path": "/dev/x", "major": -1, "minor": 3}]),
     "linux.devices[0].major: -1 is less than the minimum of 0"),
    (linux(devices=[{"type": "c", "path": "/dev/x", "major": 1, "minor": 2**32}]),
     "linux.devices[0].minor: 4294967296 is greater than the maximum of 4294967295"),
    (lambda c: c.update(hooks={"poststop": [{"path": "cleanup"}]}),
     "hooks.poststop[0].path: must be an absolute path"),
    (lambda c: c.update(hooks={"prestart": [{"path": "/x", "timeout": 0}]}),
     "hooks.prestart[0].timeout: 0 is less than the minimum of 1"),
    (linux(rootfsPropagation="rshare"),
     'linux.rootfsPropagation: "rshare" is not one of shared, slave, private, unbindable, rshared, rslave, '
     "rprivate, runbindable"),
    (linux(personality={"domain": "LINUX64"}),
     'linux.personality.domain: "LINUX64" is not one of LINUX, LINUX32'),
    (lambda c: c["process"]["capabilities"]["ambient"].append("cap_kill"),
     "process.capabilities.ambient[3]: must be a capability name such as CAP_CHOWN"),
    (linux(sysctl={"": "1"}), 'linux.sysctl: property name "": must not be empty'),
    (linux(resources={"devices": [{"allow": True, "access": "rwx"}]}),
     "linux.resources.devices[0].access: must be a combination of r, w and m"),
    (linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}),
     'linux.seccomp: "listenerPath" is required when "listenerMetadata" is set'),
    (lambda c: c.update(ociVersion="v1.0.0"), "ociVersion: must be a SemVer 2.0.0 version"),
])
def test_schema_rules(mutate, message):
    assert error_of(mutate) == "config.json: " + message


def test_relative_mount_destination_is_deprecated_not_invalid():
    valid(lambda c: c["mounts"][0].update(destination="proc"))


# --- semantic rules ------------------------------------------------------------------


@pytest.mark.parametrize("mutate, message", [
    # strings the kernel would truncate
    (lambda c: c["mounts"][0].update(destination="/pr\0c"),
     "mounts[0].destination: must not contain a NUL byte"),
    (lambda c: c["process"]["args"].append("a\0b"), "process.args[1]: must not contain a NUL byte"),
    # process
    (lambda c: c.pop("process"), "process: is required: the container has nothing to run"),
    (lambda c: c["process"]["user"].update(additionalGids=[1] * 65537),
     "process.user.additionalGids: 65537 groups is more than the kernel's limit of 65536"),
    (lambda c: c["process"]["env"].append("JUSTNAME"),
     'process.env[2]: "JUSTNAME" is not of the form NAME=value'),
    (lambda c: c["process"]["env"].append("=value"),
     'process.env[2]: "=value" is not of the form NAME=value'),
    (lambda c: c["process"]["env"].append("A=b\0c"), "process.env[2]: must not contain a NUL byte"),
    (lambda c: c.update(ociVersion="2.0.0"),
     f'ociVersion: "2.0.0" is not supported: this runtime implements 1.x (to {OCI_VERSION})'),
    # namespaces
    (add_namespace("pid"),
     'linux.namespaces[5].type: duplicate namespace type "pid"'),
    (linux(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
     "linux.uidMappings: needs a user namespace (linux.namespaces has no user entry)"),
    (add_namespace("user"),
     "linux.uidMappings: is required to create a user namespace"),
    (both(add_namespace("user"),
          linux(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])),
     "linux.gidMappings: is required to create a user namespace"),
    (both(add_namespace("user"),
          linux(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 0}],
                gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])),
     "linux.uidMappings[0].size: must be greater than 0"),
    (both(add_namespace("user"),
          linux(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}],
                gidMappings=[{"containerID": 0, "hostID": 4294967295, "size": 2}])),
     "linux.gidMappings[0].hostID: hostID + size must not exceed 4294967296"),
    (linux(timeOffsets={"monotonic": {"secs": 1}}),
     "linux.timeOffsets: needs a new time namespace (a time entry without path in linux.namespaces)"),
    (both(namespaces("mount", "uts", time="/proc/1/ns/time"), linux(timeOffsets={"boottime": {"secs": 1}})),
     "linux.timeOffsets: needs a new time namespace (a time entry without path in linux.namespaces)"),
    (both(add_namespace("time"), linux(timeOffsets={"realtime": {"secs": 1}})),
     'linux.timeOffsets.realtime: "realtime" is not one of monotonic, boottime'),
    (both(add_namespace("time"),
          linux(timeOffsets={"boottime": {"nanosecs": 1000000000}})),
     "linux.timeOffsets.boottime.nanosecs: must be less than 1000000000"),
    (namespaces("mount", "pid"), "hostname: needs a UTS namespace (linux.namespaces has no uts entry)"),
    (lambda c: c.update(hostname="h" * 65), "hostname: must be at most 64 bytes"),
    (both(lambda c: c.pop("hostname"), lambda c: c.update(domainname="d"), namespaces("mount")),
     "domainname: needs a UTS namespace (linux.namespaces has no uts entry)"),
    (both(lambda c: c.pop("hostname"), namespaces("pid")),
     "linux.maskedPaths: needs a mount namespace (linux.namespaces has no mount entry)"),
    (both(namespaces("uts", "mount"), linux(netDevices={"eth0": {}})),
     "linux.netDevices: needs a network namespace (linux.namespaces has no network entry)"),
    (linux(netDevices={"eth0/1": {}}),
     'linux.netDevices["eth0/1"]: must not be . or .. or contain /, : or whitespace'),
    (linux(netDevices={"eth0": {"name": "a-very-long-name0"}}),
     "linux.netDevices.eth0.name: must be 1 to 15 bytes long"),
    # mounts
    (lambda c: c["mounts"].append({"destination": "/data", "options": ["rbind"]}),
     "mounts[7].source: is required for a bind mount"),
    (lambda c: c["mounts"].append({"destination": "/d", "source": "/d", "options": ["bind", "idmap"]}),
     "mounts[7].options: idmap needs the mount's uidMappings and gidMappings, or a user namespace"),
    (lambda c: c["mounts"].append({"destination": "/d", "source": "/d", "options": ["bind"],
                                   "uidMappings": [{"containerID": 0, "hostID": 1, "size": 0}],
                                   "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
     "mounts[7].uidMappings[0].size: must be greater than 0"),
    # rlimits and scheduling
    (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}),
     'process.rlimits[1].type: duplicate rlimit "RLIMIT_NOFILE"'),
    (lambda c: c["process"]["rlimits"][0].update(soft=2048),
     "process.rlimits[0].soft: must not exceed hard (1024)"),
    (lambda c: c["process"].update(oomScoreAdj=1001), "process.oomScoreAdj: must be between -1000 and 1000"),
    (lambda c: c["process"].update(scheduler={"policy": "SCHED_OTHER", "nice": 20}),
     "process.scheduler.nice: must be between -20 and 19"),
    (lambda c: c["process"].update(scheduler={"policy": "SCHED_RR"}),
     "process.scheduler.priority: must be between 1 and 99 for SCHED_RR"),
    (lambda c: c["process"].update(scheduler={"policy": "SCHED_BATCH", "priority": 5}),
     "process.scheduler.priority: must be 0 for SCHED_BATCH"),
    (lambda c: c["process"].update(scheduler={"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 1000}),
     "process.scheduler: SCHED_DEADLINE needs 1024 <= runtime <= deadline <= period "
     "(period 0 meaning deadline)"),
    # resources
    (lambda c: c["process"].update(execCPUAffinity={"final": "0,3-1"}),
     "process.execCPUAffinity.final: range 3-1 is reversed"),
    (linux(resources={"memory": {"limit": -2}}),
     "linux.resources.memory.limit: must be -1 (unlimited) or a number of bytes"),
    (linux(resources={"memory": {"limit": 2048, "swap": 1024}}),
     "linux.resources.memory.swap: must not be less than limit (2048): swap limits memory+swap"),
    (linux(resources={"pids": {"limit": -2}}),
     "linux.resources.pids.limit: must be -1 (unlimited) or a number of tasks"),
    (linux(resources={"cpu": {"quota": 1000, "burst": 2000}}),
     "linux.resources.cpu.burst: must not exceed quota (1000)"),
    (linux(resources={"cpu": {"idle": 2}}), "linux.resources.cpu.idle: must be 0 or 1"),
    (linux(resources={"unified": {"../memory.max": "1"}}),
     'linux.resources.unified["../memory.max"]: must name a file in the cgroup directory'),
    (linux(resources={"unified": {"max": "1"}}),
     "linux.resources.unified.max: must be of the form controller.setting"),
    (linux(cgroupsPath="/a/../../b"), "linux.cgroupsPath: must not contain . or .. components"),
    # sysctl (runc's rules)
    (linux(sysctl={"kernel.pid_max": "1"}),
     'linux.sysctl["kernel.pid_max"]: is not isolated by any of the container\'s namespaces'),
    (both(namespaces("mount", "uts"), linux(sysctl={"net.core.somaxconn": "1"})),
     'linux.sysctl["net.core.somaxconn"]: needs a network namespace (linux.namespaces has no network entry)'),
    (both(namespaces("mount", "uts"), linux(sysctl={"fs/mqueue/queues_max": "1"})),
     'linux.sysctl["fs/mqueue/queues_max"]: needs an IPC namespace (linux.namespaces has no ipc entry)'),
    (linux(sysctl={"kernel.hostname": "h"}),
     'linux.sysctl["kernel.hostname"]: conflicts with the hostname field: set that instead'),
    (linux(sysctl={"net/../../etc": "1"}), 'linux.sysctl["net/../../etc"]: must name a file under /proc/sys'),
    (linux(sysctl={"net..ipv4": "1"}), 'linux.sysctl["net..ipv4"]: must name a file under /proc/sys'),
    # seccomp
    (linux(seccomp={"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/s"}),
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
    (linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}),
     "linux.seccomp.defaultErrnoRet: is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"),
    (syscalls({"names": ["x"], "action": "SCMP_ACT_KILL", "errnoRet": 1}),
     "linux.seccomp.syscalls[0].errnoRet: is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"),
    (syscalls({"names": ["x"], "action": "SCMP_ACT_NOTIFY"}),
     "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"),
    (syscalls({"names": ["x"], "action": "SCMP_ACT_ERRNO",
               "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}),
     "linux.seccomp.syscalls[0].args[0].index: must be at most 5: system calls have 6 arguments"),
    # other linux
    (linux(intelRdt={"closID": "a/b"}),
     "linux.intelRdt.closID: must be a directory name, or / for the default class"),
    (linux(personality={"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
     "linux.personality.flags[0]: no personality flags are supported"),
    (linux(memoryPolicy={"mode": "MPOL_LOCAL", "nodes": "0"}),
     "linux.memoryPolicy.nodes: must be empty for MPOL_LOCAL"),
    (linux(memoryPolicy={"mode": "MPOL_BIND"}), "linux.memoryPolicy.nodes: is required for MPOL_BIND"),
    (linux(memoryPolicy={"mode": "MPOL_PREFERRED",
                         "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}),
     "linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"),
    (linux(memoryPolicy={"mode": "MPOL_BIND", "nodes": "0-9876543210"}),
     "linux.memoryPolicy.nodes: 9876543210 is out of range (at most 1023)"),
    (lambda c: c["process"].update(execCPUAffinity={"final": "8192"}),
     "process.execCPUAffinity.final: 8192 is out of range (at most 8191)"),
    (lambda c: c["mounts"].append({"destination": "/proc//sys/../sys/kernel/cap_last_cap",
                                   "type": "bind", "source": "/x", "options": ["bind"]}),
     'mounts[7].destination: "/proc/sys/kernel/cap_last_cap" cannot be mounted because it is inside /proc'),
])
def test_semantic_rules(mutate, message):
    assert error_of(mutate) == "config.json: " + message


@pytest.mark.parametrize("mutate", [
    add_namespace("user", path="/proc/1/ns/user"),  # joining one needs no mappings
    both(add_namespace("time"), linux(timeOffsets={"monotonic": {"secs": -1}})),
    linux(sysctl={"kernel.shmmax": "1", "net.ipv4.ip_forward": "1", "net/ipv4/conf/eth0.100/rp_filter": "0",
                  "kernel.domainname": "x"}),
    linux(intelRdt={"closID": "/"}),
    linux(cgroupsPath="system.slice:runtime:abc"),
    linux(memoryPolicy={"mode": "MPOL_PREFERRED"}),
    linux(seccomp={"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}),
    lambda c: c["process"]["env"].append("EMPTY="),
    lambda c: c["mounts"].append({"destination": "/d", "source": "/d", "options": ["bind", "idmap"],
                                  "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                                  "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
    lambda c: c["process"].update(scheduler={"policy": "SCHED_DEADLINE", "runtime": 1024, "deadline": 2048}),
    lambda c: c.update(ociVersion="1.4.0-rc.1"),
    lambda c: c["process"].update(execCPUAffinity={"initial": "0-8191", "final": ""}),
    lambda c: c["mounts"].append({"destination": "/proc/uptime", "type": "bind", "source": "/x",
                                  "options": ["bind"]}),
])
def test_accepted(mutate):
    valid(mutate)


def test_first_error_in_document_order():
    def two_errors(c):
        c["process"]["env"].append("BAD")
        c["linux"]["namespaces"].append({"type": "pid"})

    assert error_of(two_errors) == 'config.json: process.env[2]: "BAD" is not of the form NAME=value'

    def linux_first(c):
        two_errors(c)
        process = c.pop("process")
        c["process"] = process  # now after "linux"

    assert error_of(linux_first) == 'config.json: linux.namespaces[5].type: duplicate namespace type "pid"'


def test_error_attributes():
    with pytest.raises(ConfigError) as info:
        config.validate({"ociVersion": "1.0.0", "root": {"path": "r"}, "process": {"cwd": "/", "args": [1]}})
    assert (info.value.path, info.value.rule) == ("process.args[0]", "1 is not of type string")


def test_load_example_bundle(tmp_path):
    """The bundle layout tools produce: config.json beside rootfs."""
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(BASE, indent=2))
    assert config.load(os.fspath(tmp_path))["process"]["args"] == ["sh"]
