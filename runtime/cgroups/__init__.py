"""The cgroup layer: one ``Manager`` per container, for cgroup v1 (and hybrid) or v2.

``new_manager`` decides where the container's cgroup lives and which driver serves
it; nothing is created until ``apply``.  ``save`` returns what a later command needs
to act on the same cgroup (``load_manager``), so only the first command pays for
looking at the host's mounts.

Paths follow runc: an absolute cgroupsPath is taken from each hierarchy's root, a
relative one from the calling process's own cgroup (on v2, from its parent, because
the caller's own cgroup holds processes), and an empty one means the container id,
relative.  With ``--systemd-cgroup`` (``systemd``) a transient systemd unit holds the
cgroup and a cgroupfs manager of its path does the rest.  The drivers are imported
lazily (``v1``, ``v2``, ``systemd``) to keep this import cheap.
"""

import os

from ..errors import Error

ROOT = "/sys/fs/cgroup"

#: the v1 controllers a container joins, in the order runc applies them; cpuset comes
#: first so that later controllers never see a task outside its final cpuset
V1_CONTROLLERS = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio",
                  "hugetlb", "net_cls", "net_prio", "perf_event", "freezer", "rdma",
                  "misc", "name=systemd")

SYSTEMD_UNAVAILABLE = ("systemd cgroup flag passed, but systemd support for managing "
                       "cgroups is not available")


class CgroupError(Error):
    """A cgroup operation failed; the message names the resource or file."""


def clean_path(path):
    """runc's CleanPath: lexically clean, and never climb above the start of a
    relative path (``../../x`` is ``x``)."""
    if not path:
        return ""
    absolute = path.startswith("/")
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    joined = "/".join(parts)
    return "/" + joined if absolute else joined


def parse_proc_cgroup(text):
    """``/proc/PID/cgroup`` as {controller: path}; the v2 entry is under "" and
    named hierarchies under "name=X"."""
    out = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[1] == "":
            out[""] = parts[2]
            continue
        for ctrl in parts[1].split(","):
            out[ctrl] = parts[2]
    return out


def parse_mountinfo(text):
    """The cgroup mounts of a mountinfo text: a list of (mountpoint, root, fstype,
    controllers) where controllers is a set (empty for cgroup2)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        ctrls = set()
        if fstype == "cgroup":
            for opt in fields[sep + 3].split(","):
                if opt in ("rw", "ro") or (opt.startswith(("xattr", "clone_children",
                                                          "release_agent=", "cpuset_v2"))):
                    continue
                ctrls.add(opt)
        mounts.append((_unescape(fields[4]), _unescape(fields[3]), fstype, ctrls))
    return mounts


def _unescape(field):
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _read(path):
    with open(path) as f:
        return f.read()


class Host:
    """What the host mounts, read once per process (tests pass their own)."""

    def __init__(self, root=ROOT, mountinfo=None, proc_cgroup=None):
        self.root = root
        self._mountinfo = mountinfo
        self._proc_cgroup = proc_cgroup
        self._mounts = None
        self._own = None

    @property
    def unified(self):
        """True when ``root`` itself is a cgroup2 mount (pure v2)."""
        return os.path.exists(self.root + "/cgroup.controllers")

    @property
    def hybrid_root(self):
        """The cgroup2 mount of a hybrid host (``root/unified``), or None."""
        path = self.root + "/unified"
        return path if os.path.exists(path + "/cgroup.controllers") else None

    def own(self):
        """The caller's cgroups, {controller: path}."""
        if self._own is None:
            text = self._proc_cgroup if self._proc_cgroup is not None else _read(
                "/proc/self/cgroup")
            self._own = parse_proc_cgroup(text)
        return self._own

    def v1_mounts(self):
        """{controller: (mountpoint, mount root)} of the v1 hierarchies under root."""
        if self._mounts is None:
            text = self._mountinfo if self._mountinfo is not None else _read(
                "/proc/self/mountinfo")
            mounts = {}
            prefix = self.root.rstrip("/") + "/"
            for mnt, mroot, fstype, ctrls in parse_mountinfo(text):
                if fstype != "cgroup" or not mnt.startswith(prefix):
                    continue
                for c in ctrls:
                    mounts.setdefault(c, (mnt, mroot))
            self._mounts = mounts
        return self._mounts


def _join(*parts):
    out = parts[0].rstrip("/")
    for p in parts[1:]:
        p = p.strip("/")
        if p:
            out += "/" + p
    return out or "/"


def _relative_to(path, base):
    """``path`` below ``base`` (both absolute cgroup paths), as runc's filepath.Rel
    does for the caller's own cgroup seen through a mount of a subtree."""
    base = base.rstrip("/")
    if base and (path == base or path.startswith(base + "/")):
        return path[len(base):]
    return path


def v1_paths(host, inner, controllers=V1_CONTROLLERS):
    """{controller: directory} for a cleaned cgroupsPath ``inner``, v1 hierarchies
    (plus "" for the cgroup2 mount of a hybrid host, which runc joins too)."""
    mounts = host.v1_mounts()
    paths = {}
    absolute = inner.startswith("/")
    for ctrl in controllers:
        if ctrl not in mounts:
            continue
        mnt, mroot = mounts[ctrl]
        if absolute:
            paths[ctrl] = _join(mnt, inner)
        else:
            own = host.own().get(ctrl, "/")
            paths[ctrl] = _join(mnt, _relative_to(own, mroot), inner)
    if "devices" not in paths:
        # runc treats a missing devices hierarchy as fatal: without it a container
        # could open every device node it can create
        raise CgroupError("cgroup: the devices cgroup controller is not mounted")
    hybrid = host.hybrid_root
    if hybrid is not None:
        paths[""] = _join(hybrid, inner if absolute else _join(host.own().get("", "/"), inner))
    return paths


def v2_path(host, inner):
    """The container's directory on a pure v2 host."""
    if inner.startswith("/"):
        return _join(host.root, inner)
    own = host.own().get("", "/")
    # the caller's own cgroup holds processes, so controllers cannot be enabled for
    # a child of it: runc goes to its parent
    parent = own.rsplit("/", 1)[0] or "/"
    return _join(host.root, parent, inner)


def parse_systemd_path(path, container_id):
    """Split a systemd cgroupsPath ``slice:prefix:name`` (runc's format)."""
    if not path:
        return "", "runc", container_id
    parts = path.split(":")
    if len(parts) != 3:
        raise CgroupError('expected cgroupsPath to be of format "slice:prefix:name" for '
                          f'systemd cgroups, got "{path}" instead')
    return tuple(parts)


def systemd_running():
    return os.path.isdir("/run/systemd/system")


def new_manager(container_id, cgroups_path, *, systemd=False, rootless=False, host=None):
    """The manager for a new container's cgroup; nothing is created yet."""
    if systemd:
        if not systemd_running():
            raise CgroupError(SYSTEMD_UNAVAILABLE)
        if rootless:
            raise CgroupError("systemd cgroup driver: rootless containers (systemd --user "
                              "over the session bus) are not supported by this runtime; "
                              "run without --systemd-cgroup")
        from .systemd import Systemd, cgroup_path

        slice_, unit, path = cgroup_path(cgroups_path, container_id)
        return Systemd(unit, slice_, new_manager(container_id, path, host=host))
    host = host or Host()
    inner = clean_path(cgroups_path) or container_id
    if host.unified:
        from .v2 import CgroupV2

        return CgroupV2(v2_path(host, inner), root=host.root, rootless=rootless,
                        explicit=bool(cgroups_path))
    from .v1 import CgroupV1

    return CgroupV1(v1_paths(host, inner), root=host.root, rootless=rootless,
                    explicit=bool(cgroups_path))


def load_manager(saved):
    """The manager of a container from its ``Manager.save()``; ValueError names
    what is wrong with a damaged one."""
    if type(saved) is not dict:
        raise ValueError("cgroup is not an object")
    version = saved.get("version", 1)
    if version == 2:
        from .v2 import CgroupV2 as cls
        where = saved.get("path")
        if type(where) is not str:
            raise ValueError("cgroup.path is not a string")
    elif version == 1:
        from .v1 import CgroupV1 as cls
        where = saved.get("paths")
        if type(where) is not dict or not all(type(v) is str for v in where.values()):
            raise ValueError("cgroup.paths is not an object of strings")
    else:
        raise ValueError(f"cgroup.version: {version!r} is not 1 or 2")
    if type(saved.get("root", "")) is not str:
        raise ValueError("cgroup.root is not a string")
    created = saved.get("created", [])
    if type(created) is not list or not all(type(d) is str for d in created):
        raise ValueError("cgroup.created is not an array of strings")
    unit = saved.get("systemd")
    if unit is not None:
        if type(unit) is not dict or not all(type(unit.get(k)) is str for k in ("unit", "slice")):
            raise ValueError("cgroup.systemd is not an object with unit and slice")
        from .systemd import Systemd

        return Systemd.load(unit, cls.load(saved))
    return cls.load(saved)


def default_device_rules():
    """runc's default device allow list (linux.resources.devices entries), to be
    appended after the config's own rules: mknod of any node, the standard nodes,
    ptys and tun.  Not the host's /dev/console (5:1): a container with a terminal
    has its own pty (136:N) bind-mounted there, which the pts rule allows."""
    rules = [{"allow": True, "type": "c", "access": "m"},
             {"allow": True, "type": "b", "access": "m"}]
    for major, minor in ((1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9),
                         (136, None), (5, 2), (10, 200)):
        rule = {"allow": True, "type": "c", "major": major, "access": "rwm"}
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    return rules


class Manager:
    """The container's cgroup (see the module docstring); CgroupV1 and CgroupV2
    implement it."""

    version = 0
    #: the pid must be given to apply() (stage-1's), not joined later (systemd)
    apply_early = False

    def __init__(self, root=ROOT, rootless=False, explicit=True, created=()):
        self.root = root
        self.rootless = rootless
        #: True when cgroupsPath was given (rootless errors are then not ignored)
        self.explicit = explicit
        #: directories apply() made, outermost first
        self.created = list(created)
        #: warnings of the last set()/update(), one line each, for the CLI to log
        self.warnings = []

    # -- lifecycle ---------------------------------------------------------------

    def apply(self, pid):
        raise NotImplementedError

    def plan(self):
        """Count the directories apply() will make as made already, so that a
        create killed half way through apply() leaves them to destroy()."""
        from .fs import missing_dirs

        for path in dict.fromkeys(self.paths().values()):
            self._record(missing_dirs(path, self.root))

    def _record(self, dirs):
        """Add ``dirs`` to ``created`` (plan() may have counted them already)."""
        self.created.extend(d for d in dirs if d not in self.created)

    def join(self, pid):
        """Move ``pid`` into the existing cgroup (``runtime exec``); creates nothing."""
        from .fs import add_pid

        for path in dict.fromkeys(self.paths().values()):
            if os.path.isdir(path):
                add_pid(path, pid)

    def set(self, resources):
        raise NotImplementedError

    def update(self, resources):
        """``runtime update``: change only the fields present."""
        self.set(resources)

    def destroy(self):
        """Remove what apply() created: the container's own directory with any
        cgroups made below it (retrying while exiting tasks leave), then the
        ancestors it made, deepest first, each only if empty: another container
        may have been put under the same parent meanwhile.  Nothing that existed
        before apply() is removed, and no process is killed."""
        from .fs import remove_tree, rmdir_if_empty

        leaves = set(self.paths().values())
        created = set(self.created)
        for leaf in sorted(leaves & created):
            remove_tree(leaf)
        for path in sorted(created - leaves, key=lambda p: p.count("/"), reverse=True):
            rmdir_if_empty(path)
        self.created = []

    def save(self):
        raise NotImplementedError

    def close(self):
        """Let go of what the manager holds open (the systemd driver's D-Bus
        connection); it can still be used afterwards."""

    def paths(self):
        raise NotImplementedError

    def exists(self):
        return any(os.path.isdir(p) for p in self.paths().values())

    # -- processes ---------------------------------------------------------------

    def freeze(self):
        raise NotImplementedError

    def thaw(self):
        raise NotImplementedError

    def frozen(self):
        raise NotImplementedError

    def procs_dir(self):
        """The directory whose tree lists the container's processes."""
        raise NotImplementedError

    def pids(self):
        """Every process in the cgroup and its descendants."""
        from .fs import all_pids

        where = self.procs_dir()
        # A rootless container may have joined no cgroup at all.
        return all_pids(where) if where else []

    def signal_all(self, sig):
        """Signal every process: frozen meanwhile, so none forks past the signal."""
        from .fs import signal_pids

        was_frozen = self.frozen()
        have_freezer = True
        if not was_frozen:
            try:
                self.freeze()
            except Error:
                have_freezer = False  # signal anyway
        try:
            signal_pids(self.pids(), sig)
        finally:
            # a paused container stays paused, except that SIGKILL needs the
            # tasks thawed to take effect (runc thaws after signalling, always)
            if have_freezer and (not was_frozen or sig == 9):
                self.thaw()

    # -- monitoring ----------------------------------------------------------------

    def stats(self):
        raise NotImplementedError

    def oom_events(self):
        raise NotImplementedError

    def oom_kill_count(self):
        raise NotImplementedError
