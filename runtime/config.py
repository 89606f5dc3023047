"""Reading and validating a bundle's config.json.

`validate` applies oci-schemas/config.json (through runtime.schema), then the rules
a schema cannot state: relations between fields, limits the kernel imposes, and
the checks runc makes before it creates anything.  Each rule is a small generator
yielding ``(path, rule)``; of all the errors found, the one earliest in the
document is raised as a ConfigError, so the report does not depend on the order
of the rules.  Rules run only on schema-valid documents, so they can rely on
types and required fields.
"""

import os

from . import OCI_VERSION, schema
from .errors import ConfigError
from .jsonfast import loads

NAME = "config.json"


def load(bundle):
    """Read, parse and validate ``<bundle>/config.json``; return it as a dict."""
    try:
        with open(os.path.join(bundle, NAME), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError("", f"JSON specification file {NAME} not found") from None  # runc's words
    except OSError as e:
        raise ConfigError("", f"cannot read: {os.strerror(e.errno).lower()}") from None
    try:
        config = loads(data)
    except ValueError as e:
        raise ConfigError("", f"invalid JSON: {e}") from None
    # JSON can spell a lone UTF-16 surrogate ("\ud800"), which no path or name
    # passed to the kernel can hold; only a file with such an escape is walked.
    if b"\\ud" in data.lower():
        _no_surrogates(config, [])
    validate(config)
    return config


def _no_surrogates(value, path):
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(schema.path_str(path), "a string holds a lone UTF-16 surrogate, "
                              "which is not valid Unicode") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_surrogates(k, path + [k])
            _no_surrogates(v, path + [k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_surrogates(v, path + [i])


def validate(config):
    """Raise ConfigError for the first violation of the spec in `config`."""
    failure = schema.check(config, NAME, strict_int=True)
    if failure is not None:
        raise ConfigError(schema.path_str(failure.path), failure.message)
    linux = config.get("linux", {})
    namespaces = {}
    for ns in linux.get("namespaces", ()):
        namespaces.setdefault(ns["type"], ns)
    errors = [e for rule in _RULES for e in rule(config, linux, namespaces)]
    if errors:
        path, rule = min(errors, key=lambda e: _position(config, e[0]))
        raise ConfigError(schema.path_str(path), rule)


def _position(doc, path):
    """A sort key putting `path` in document order (a missing key sorts last)."""
    key = []
    for p in path:
        if type(doc) is dict:
            keys = list(doc)
            key.append(keys.index(p) if p in doc else len(keys))
            doc = doc.get(p)
        elif type(doc) is list and type(p) is int and p < len(doc):
            key.append(p)
            doc = doc[p]
        else:
            key.append(0)
            doc = None
    return key


def _each(doc, pattern, path=()):
    """Yield ``(path, value)`` for every value at `pattern`, a tuple of keys in
    which "*" stands for every member of an object or array."""
    if not pattern:
        yield path, doc
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        items = doc.items() if type(doc) is dict else enumerate(doc) if type(doc) is list else ()
        for k, v in items:
            yield from _each(v, rest, path + (k,))
    elif type(doc) is dict and head in doc:
        yield from _each(doc[head], rest, path + (head,))


# Strings handed to system calls, where a NUL would silently truncate them.
_SYSCALL_STRINGS = (
    ("root", "path"),
    ("mounts", "*", "destination"), ("mounts", "*", "source"), ("mounts", "*", "type"),
    ("mounts", "*", "options", "*"),
    ("process", "cwd"), ("process", "args", "*"), ("process", "apparmorProfile"),
    ("process", "selinuxLabel"),
    ("hostname",), ("domainname",),
    ("hooks", "*", "*", "path"), ("hooks", "*", "*", "args", "*"), ("hooks", "*", "*", "env", "*"),
    ("linux", "namespaces", "*", "path"), ("linux", "devices", "*", "path"),
    ("linux", "maskedPaths", "*"), ("linux", "readonlyPaths", "*"), ("linux", "cgroupsPath"),
    ("linux", "mountLabel"), ("linux", "sysctl", "*"), ("linux", "resources", "unified", "*"),
    ("linux", "seccomp", "listenerPath"), ("linux", "seccomp", "syscalls", "*", "names", "*"),
)


def _no_nul(config, linux, namespaces):
    for pattern in _SYSCALL_STRINGS:
        for path, value in _each(config, pattern):
            if "\0" in value:
                yield path, "must not contain a NUL byte"


def _process(config, linux, namespaces):
    if "process" not in config:
        yield ("process",), "is required: the container has nothing to run"  # runc requires it too
    for path, var in _each(config, ("process", "env", "*")):
        name, eq, _ = var.partition("=")
        if not name or not eq:
            yield path, f"{schema.show(var)} is not of the form NAME=value"
        elif "\0" in var:
            yield path, "must not contain a NUL byte"
    gids = ((config.get("process") or {}).get("user") or {}).get("additionalGids") or ()
    if len(gids) > NGROUPS_MAX:
        yield (("process", "user", "additionalGids"),
               f"{len(gids)} groups is more than the kernel's limit of {NGROUPS_MAX}")


NGROUPS_MAX = 65536  # include/uapi/linux/limits.h


def _version(config, linux, namespaces):
    version = config["ociVersion"]
    if version.split(".", 1)[0] != "1":
        rule = f"{schema.show(version)} is not supported: this runtime implements 1.x (to {OCI_VERSION})"
        yield ("ociVersion",), rule


def _namespace_rules(config, linux, namespaces):
    seen = set()
    for i, ns in enumerate(linux.get("namespaces", ())):
        if ns["type"] in seen:
            yield ("linux", "namespaces", i, "type"), f"duplicate namespace type {schema.show(ns['type'])}"
        seen.add(ns["type"])
    user = namespaces.get("user")
    for key in ("uidMappings", "gidMappings"):
        if user is None and linux.get(key):
            yield ("linux", key), "needs a user namespace (linux.namespaces has no user entry)"
        elif user is not None and "path" not in user and not linux.get(key):
            yield ("linux", key), "is required to create a user namespace"
        yield from _mapping_ranges(linux.get(key, ()), ("linux", key))
    time = namespaces.get("time")
    if linux.get("timeOffsets") and (time is None or "path" in time):
        yield ("linux", "timeOffsets"), \
            "needs a new time namespace (a time entry without path in linux.namespaces)"
    for clock, offset in linux.get("timeOffsets", {}).items():
        if clock not in ("monotonic", "boottime"):
            yield ("linux", "timeOffsets", clock), f"{schema.show(clock)} is not one of monotonic, boottime"
        elif offset.get("nanosecs", 0) >= 1000000000:
            yield ("linux", "timeOffsets", clock, "nanosecs"), "must be less than 1000000000"
    for key in ("hostname", "domainname"):
        if config.get(key) and "uts" not in namespaces:
            yield (key,), "needs a UTS namespace (linux.namespaces has no uts entry)"
        if len(config.get(key, "").encode()) > 64:
            yield (key,), "must be at most 64 bytes"
    for key in ("maskedPaths", "readonlyPaths"):
        if linux.get(key) and "mount" not in namespaces:
            yield ("linux", key), "needs a mount namespace (linux.namespaces has no mount entry)"
    if linux.get("netDevices") and "network" not in namespaces:
        yield ("linux", "netDevices"), "needs a network namespace (linux.namespaces has no network entry)"


def _mapping_ranges(mappings, path):
    for i, m in enumerate(mappings):
        if m["size"] == 0:
            yield path + (i, "size"), "must be greater than 0"
        for key in ("containerID", "hostID"):
            if m[key] + m["size"] > 1 << 32:
                yield path + (i, key), f"{key} + size must not exceed 4294967296"


#: the files under /proc a mount may cover (those lxcfs emulates), as runc allows
PROC_MOUNT_ALLOWED = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled"))


def proc_mount_refusal(dest, fstype, source_is_proc=None):
    """Why a mount at ``dest`` (normalized, absolute in the container) may not be
    made, or None.  Nothing may cover a file of the container's /proc except the
    few above: a file holding "0" over /proc/sys/kernel/cap_last_cap, say, would
    lie to the runtime and to every tool inside.  /proc itself takes a proc mount,
    or a bind of a procfs (``source_is_proc``, known only where the mount is made)."""
    if dest == "/proc":
        if fstype == "proc" or source_is_proc is not False:
            return None
        return f'"{dest}" cannot be mounted because it is not of type proc'
    if dest.startswith("/proc/") and dest not in PROC_MOUNT_ALLOWED:
        return f'"{dest}" cannot be mounted because it is inside /proc'
    return None


def _mounts(config, linux, namespaces):
    for i, m in enumerate(config.get("mounts", ())):
        options = m.get("options", ())
        refusal = proc_mount_refusal(os.path.normpath("/" + m["destination"].lstrip("/")),
                                     m.get("type"))
        if refusal:
            yield ("mounts", i, "destination"), refusal
        if ("bind" in options or "rbind" in options) and not m.get("source"):
            yield ("mounts", i, "source"), "is required for a bind mount"
        idmap = "idmap" in options or "ridmap" in options
        if idmap and "uidMappings" not in m and "user" not in namespaces:
            yield ("mounts", i, "options"), \
                "idmap needs the mount's uidMappings and gidMappings, or a user namespace"
        for key in ("uidMappings", "gidMappings"):
            yield from _mapping_ranges(m.get(key, ()), ("mounts", i, key))


def _rlimits(config, linux, namespaces):
    seen = set()
    for i, r in enumerate(config.get("process", {}).get("rlimits", ())):
        if r["type"] in seen:
            yield ("process", "rlimits", i, "type"), f"duplicate rlimit {schema.show(r['type'])}"
        seen.add(r["type"])
        if r["soft"] > r["hard"]:
            yield ("process", "rlimits", i, "soft"), f"must not exceed hard ({r['hard']})"


def _scheduling(config, linux, namespaces):
    process = config.get("process", {})
    if not -1000 <= process.get("oomScoreAdj", 0) <= 1000:
        yield ("process", "oomScoreAdj"), "must be between -1000 and 1000"
    sched = process.get("scheduler")
    if sched is None:
        return
    path = ("process", "scheduler")
    policy, priority = sched["policy"], sched.get("priority", 0)
    if not -20 <= sched.get("nice", 0) <= 19:
        yield path + ("nice",), "must be between -20 and 19"
    if policy in ("SCHED_FIFO", "SCHED_RR"):
        if not 1 <= priority <= 99:
            yield path + ("priority",), f"must be between 1 and 99 for {policy}"
    elif priority != 0:
        yield path + ("priority",), f"must be 0 for {policy}"
    if policy == "SCHED_DEADLINE":
        runtime, deadline, period = (sched.get(k, 0) for k in ("runtime", "deadline", "period"))
        if not 1024 <= runtime <= deadline or period and period < deadline:
            yield path, \
                "SCHED_DEADLINE needs 1024 <= runtime <= deadline <= period (period 0 meaning deadline)"


_CPU_LISTS = (
    ("process", "execCPUAffinity", "initial"), ("process", "execCPUAffinity", "final"),
    ("linux", "resources", "cpu", "cpus"), ("linux", "resources", "cpu", "mems"),
    ("linux", "memoryPolicy", "nodes"),
)
#: the largest numbers a kernel can have (NR_CPUS <= 8192, MAX_NUMNODES <= 1024): a
#: list beyond them is an error here, not a mask of gigabytes built for the kernel
_LIST_BOUND = {"cpus": 8192, "initial": 8192, "final": 8192, "mems": 1024, "nodes": 1024}


def _resources(config, linux, namespaces):
    for pattern in _CPU_LISTS:
        for path, value in _each(config, pattern):
            bound = _LIST_BOUND[path[-1]]
            for part in value.split(","):
                lo, _, hi = part.partition("-")
                top = (hi or lo).strip()
                if hi and int(hi) < int(lo):
                    yield path, f"range {part} is reversed"
                elif top and int(top) >= bound:
                    yield path, f"{int(top)} is out of range (at most {bound - 1})"
    res = linux.get("resources", {})
    path = ("linux", "resources")
    memory = res.get("memory", {})
    for key in ("limit", "reservation", "swap", "kernel", "kernelTCP"):
        if memory.get(key, 0) < -1:
            yield path + ("memory", key), "must be -1 (unlimited) or a number of bytes"
    limit, swap = memory.get("limit", 0), memory.get("swap", 0)
    if limit > 0 and 0 < swap < limit:
        yield path + ("memory", "swap"), f"must not be less than limit ({limit}): swap limits memory+swap"
    if res.get("pids", {}).get("limit", 0) < -1:
        yield path + ("pids", "limit"), "must be -1 (unlimited) or a number of tasks"
    cpu = res.get("cpu", {})
    quota = cpu.get("quota", 0)
    if quota > 0 and cpu.get("burst", 0) > quota:
        yield path + ("cpu", "burst"), f"must not exceed quota ({quota})"
    if cpu.get("idle", 0) not in (0, 1):
        yield path + ("cpu", "idle"), "must be 0 or 1"
    for key in res.get("unified", {}):
        if "/" in key or "\0" in key or key in (".", ".."):
            yield path + ("unified", key), "must name a file in the cgroup directory"
        elif "." not in key.strip("."):
            yield path + ("unified", key), "must be of the form controller.setting"
    cgroups_path = linux.get("cgroupsPath", "")
    if any(part in (".", "..") for part in cgroups_path.split("/")):
        yield ("linux", "cgroupsPath"), "must not contain . or .. components"


# sysctls that are safe to set because the IPC namespace isolates them (runc's list)
_IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})


def _sysctl(config, linux, namespaces):
    for key in linux.get("sysctl", {}):
        path = ("linux", "sysctl", key)
        # "a/b.c/d" is the slash form of "a.b/c.d" (sysctl.d(5)); /proc/sys/<file>
        slash_form = key.find("/") != -1 and (key.find(".") == -1 or key.find("/") < key.find("."))
        name = key.translate(_SWAP_DOT_SLASH) if slash_form else key
        file = key if slash_form else key.translate(_SWAP_DOT_SLASH)
        if "\0" in key:
            yield path, "must not contain a NUL byte"
        elif any(part in ("", ".", "..") for part in file.split("/")):
            yield path, "must name a file under /proc/sys"
        elif name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if "ipc" not in namespaces:
                yield path, "needs an IPC namespace (linux.namespaces has no ipc entry)"
        elif name.startswith("net."):
            if "network" not in namespaces:
                yield path, "needs a network namespace (linux.namespaces has no network entry)"
        elif name == "kernel.hostname":
            yield path, "conflicts with the hostname field: set that instead"
        elif name != "kernel.domainname" or "uts" not in namespaces:
            yield path, "is not isolated by any of the container's namespaces"


_SWAP_DOT_SLASH = str.maketrans("./", "/.")
_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")


def _seccomp(config, linux, namespaces):
    seccomp = linux.get("seccomp")
    if seccomp is None:
        return
    path = ("linux", "seccomp")
    if seccomp["defaultAction"] == "SCMP_ACT_NOTIFY":
        yield path + ("defaultAction",), "SCMP_ACT_NOTIFY cannot be the default action"
    if "defaultErrnoRet" in seccomp and seccomp["defaultAction"] not in _ERRNO_ACTIONS:
        yield path + ("defaultErrnoRet",), "is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"
    for i, rule in enumerate(seccomp.get("syscalls", ())):
        here = path + ("syscalls", i)
        if "errnoRet" in rule and rule["action"] not in _ERRNO_ACTIONS:
            yield here + ("errnoRet",), "is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"
        if rule["action"] == "SCMP_ACT_NOTIFY" and not seccomp.get("listenerPath"):
            yield here + ("action",), "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"
        for j, arg in enumerate(rule.get("args", ())):
            if arg["index"] > 5:
                yield here + ("args", j, "index"), "must be at most 5: system calls have 6 arguments"


def _ifname_error(name):
    """Why the kernel would refuse `name` for a network interface, or None."""
    if not name or len(name.encode()) > 15:
        return "must be 1 to 15 bytes long"
    if name in (".", "..") or any(c in "/: \t\n\v\f\r\0" for c in name):
        return "must not be . or .. or contain /, : or whitespace"
    return None


def _linux_misc(config, linux, namespaces):
    for i, device in enumerate(linux.get("devices", ())):
        for key in ("major", "minor"):
            number = device.get(key)
            if number is not None and number < 0:
                yield ("linux", "devices", i, key), f"{number} is less than the minimum of 0"
            elif number is not None and number > 0xFFFFFFFF:
                yield (("linux", "devices", i, key),
                       f"{number} is greater than the maximum of 4294967295")
    for key, device in linux.get("netDevices", {}).items():
        path = ("linux", "netDevices", key)
        error = _ifname_error(key)
        if error:
            yield path, error
        error = _ifname_error(device["name"]) if "name" in device else None
        if error:
            yield path + ("name",), error
    clos = linux.get("intelRdt", {}).get("closID", "")
    if clos not in ("", "/") and (clos in (".", "..") or "/" in clos):
        yield ("linux", "intelRdt", "closID"), "must be a directory name, or / for the default class"
    if linux.get("personality", {}).get("flags"):
        yield ("linux", "personality", "flags", 0), "no personality flags are supported"
    policy = linux.get("memoryPolicy")
    if policy is not None:
        path = ("linux", "memoryPolicy")
        mode, nodes, flags = policy["mode"], policy.get("nodes", ""), policy.get("flags", ())
        if mode in ("MPOL_DEFAULT", "MPOL_LOCAL") and nodes:
            yield path + ("nodes",), f"must be empty for {mode}"
        elif mode in _MPOL_NEEDS_NODES and not nodes:
            yield path + ("nodes",), f"is required for {mode}"
        if "MPOL_F_STATIC_NODES" in flags and "MPOL_F_RELATIVE_NODES" in flags:
            yield path + ("flags",), "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"


_MPOL_NEEDS_NODES = ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY")
_RULES = (
    _no_nul, _process, _version, _namespace_rules, _mounts, _rlimits, _scheduling,
    _resources, _sysctl, _seccomp, _linux_misc,
)
