"""A description of the machine and of the runtimes' versions, for the report."""

import os
import platform
import sys
import time

from .runtimes import host_is_hybrid


def _first(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cgroup_mode():
    if host_is_hybrid():
        return "hybrid: cgroup v1 controllers, cgroup2 at /sys/fs/cgroup/unified"
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "cgroup v2 (unified)"
    return "cgroup v1"


def _script_interpreter(path):
    """The interpreter named by a script's #! line, if it is a Python."""
    try:
        with open(path, "rb") as f:
            head = f.readline(256)
    except OSError:
        return None
    if head.startswith(b"#!") and b"python" in head:
        return head[2:].decode(errors="replace").strip().split()[0]
    return None


def runtime_versions(runtimes, spawner):
    """{name: (version text, python interpreter version or None)}."""
    versions = {}
    for rt in runtimes:
        _, out, status = spawner.run(rt.version_argv(), capture=True, check=False)
        text = " / ".join(line.strip() for line in out.splitlines()[:2] if line.strip())
        if status != 0 or not text:
            text = f"unknown (--version {'exited %d' % status if status else 'printed nothing'})"
        interp = _script_interpreter(rt.path)
        py = None
        if interp:
            _, pyout, _ = spawner.run([interp, "-VV"], capture=True, check=False)
            py = f"{interp}: {pyout.strip()}"
        versions[rt.name] = (text, py)
    return versions


def describe(runtimes, spawner):
    mem_kb = int(_first("/proc/meminfo", "MemTotal").split()[0] or 0)
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "os": _os_name(),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "cgroups": cgroup_mode(),
        "python (harness)": f"{sys.executable}: {sys.version.split()[0]}",
        "load average at start": loadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "runtimes": {
            name: {"version": v, "python": py}
            for name, (v, py) in runtime_versions(runtimes, spawner).items()
        },
    }
