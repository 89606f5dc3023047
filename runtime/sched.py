"""Scheduling and memory attributes of a process: process.scheduler,
process.ioPriority, process.execCPUAffinity, linux.memoryPolicy, linux.personality."""

import os

from . import linux
from .errors import ConfigError, Error, SysError

# <linux/sched.h>
POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
            "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
# <linux/ioprio.h>
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13
# <linux/mempolicy.h>
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
              "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
              "MPOL_F_STATIC_NODES": 1 << 15}
# <linux/personality.h>
PERSONALITIES = {"LINUX": 0x0000, "LINUX32": 0x0008}


def parse_cpus(text, what="cpus"):
    """"0-3,7" -> {0, 1, 2, 3, 7}."""
    out = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ConfigError(what, f"invalid list {text!r}") from None
        if b < a:
            raise ConfigError(what, f"invalid range {part!r}")
        out.update(range(a, b + 1))
    return out


def apply_scheduler(s):
    policy = POLICIES[s["policy"]]
    flags = 0
    for f in s.get("flags") or ():
        flags |= SCHED_FLAGS[f]
    try:
        linux.sched_setattr(policy, nice=s.get("nice", 0), priority=s.get("priority", 0),
                            flags=flags, runtime=s.get("runtime", 0),
                            deadline=s.get("deadline", 0), period=s.get("period", 0))
    except SysError as e:
        if e.errno == 1 and s["policy"] in ("SCHED_FIFO", "SCHED_RR"):
            # With RT group scheduling a cgroup gets no realtime time by default.
            raise Error(f"process.scheduler: {s['policy']} refused (operation not permitted):"
                        " the container's cpu cgroup needs realtime time "
                        "(linux.resources.cpu.realtimeRuntime)") from None
        raise


def apply_io_priority(io):
    value = IOPRIO_CLASSES[io["class"]] << IOPRIO_CLASS_SHIFT | io.get("priority", 0)
    linux.ioprio_set(IOPRIO_WHO_PROCESS, 0, value)


def apply_affinity(cpus_text):
    os.sched_setaffinity(0, parse_cpus(cpus_text, "process.execCPUAffinity"))


def apply_memory_policy(policy):
    mode = MPOL_MODES[policy["mode"]]
    for f in policy.get("flags") or ():
        mode |= MPOL_FLAGS[f]
    nodes = sorted(parse_cpus(policy.get("nodes") or "", "linux.memoryPolicy.nodes"))
    linux.set_mempolicy(mode, nodes)


def apply_personality(p):
    if p.get("flags"):
        raise ConfigError("linux.personality.flags", "no personality flags are supported")
    linux.personality(PERSONALITIES[p["domain"]])
