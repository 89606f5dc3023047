"""The runtimes under test: how to name, find and invoke each one."""

import os
import re
import shutil
from dataclasses import dataclass, field

UNIFIED = "/sys/fs/cgroup/unified"

# crun refuses a hybrid cgroup host (v1 controllers plus a cgroup2 mount at
# /sys/fs/cgroup/unified).  Run it in a private mount namespace without that mount;
# "$0" is the runtime binary, "$@" its arguments.
UNIFIED_WRAPPER_SCRIPT = 'umount ' + UNIFIED + ' 2>/dev/null; exec "$0" "$@"'

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Runtimes that need the wrapper on a hybrid host unless told otherwise.
NEEDS_UNIFIED_WRAPPER = {"crun"}


def host_is_hybrid():
    """True if cgroup v1 controllers are mounted and a cgroup2 tree sits at UNIFIED."""
    v1 = unified = False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0]
            mountpoint = left.split()[4]
            if fstype == "cgroup":
                v1 = True
            elif fstype == "cgroup2" and mountpoint == UNIFIED:
                unified = True
    return v1 and unified


def wrapper_argv():
    return [shutil.which("unshare") or "/usr/bin/unshare", "-m",
            shutil.which("sh") or "/bin/sh", "-c", UNIFIED_WRAPPER_SCRIPT]


@dataclass
class Runtime:
    name: str
    path: str  # absolute path of the binary
    wrapper: list = field(default_factory=list)  # argv put before the binary
    root: str = ""  # --root state directory, set by the harness
    # per-runtime harness bookkeeping
    live: dict = field(default_factory=dict)  # container id -> Container
    failed: dict = field(default_factory=dict)  # scenario -> error text

    @property
    def cgroup_parent(self):
        return f"/bench-{self.name}"

    def argv(self, *args):
        return [*self.wrapper, self.path, "--root", self.root, *args]

    def version_argv(self):
        return [*self.wrapper, self.path, "--version"]

    def describe(self):
        text = f"`{self.path}`"
        if self.wrapper:
            text += " (inside `unshare -m` with the cgroup2 mount at " + UNIFIED + " removed)"
        return text


def parse_spec(spec):
    """``NAME=PATH``, ``NAME`` (found on PATH) or ``PATH`` (named after its file)."""
    if "=" in spec:
        name, path = spec.split("=", 1)
    elif "/" in spec:
        name, path = os.path.basename(spec), spec
    else:
        name, path = spec, spec
    if not _NAME.match(name):
        raise ValueError(f"runtime name {name!r}: use letters, digits, '_', '.', '-'")
    found = shutil.which(path) if "/" not in path else path
    if not found or not os.access(found, os.X_OK):
        raise ValueError(f"runtime {name!r}: {path!r} is not an executable")
    return name, os.path.abspath(found)


def make_runtimes(specs, wrap=(), no_wrap=(), hybrid=None):
    """Runtime objects for the --runtime specs; the unified-umount wrapper goes on
    runtimes named in ``wrap``, and on crun by default when the host is hybrid."""
    if hybrid is None:
        hybrid = host_is_hybrid()
    runtimes, seen = [], set()
    for spec in specs:
        name, path = parse_spec(spec)
        if name in seen:
            raise ValueError(f"runtime {name!r} given twice")
        seen.add(name)
        wrapped = name in wrap or (hybrid and name in NEEDS_UNIFIED_WRAPPER and name not in no_wrap)
        runtimes.append(Runtime(name, path, wrapper_argv() if wrapped else []))
    return runtimes
