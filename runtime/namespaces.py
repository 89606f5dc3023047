"""linux.namespaces: creating, joining, id maps and time offsets."""

import _socket
import fcntl
import os
import struct

from . import linux
from .errors import Error, SysError

# config type -> (clone flag, name under /proc/<pid>/ns)
TYPES = {
    "pid": (linux.CLONE_NEWPID, "pid"),
    "network": (linux.CLONE_NEWNET, "net"),
    "mount": (linux.CLONE_NEWNS, "mnt"),
    "ipc": (linux.CLONE_NEWIPC, "ipc"),
    "uts": (linux.CLONE_NEWUTS, "uts"),
    "user": (linux.CLONE_NEWUSER, "user"),
    "cgroup": (linux.CLONE_NEWCGROUP, "cgroup"),
    "time": (linux.CLONE_NEWTIME, "time"),
}

# Joined in this order: the user namespace first (it grants the capabilities to
# join the others), the mount namespace last (it changes what paths mean); but
# see join_order for namespaces the joined user namespace does not own.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")
NS_GET_USERNS = 0xB701      # _IO(0xb7, 0x1), <linux/nsfs.h>


def join_order(fds):
    """The kinds of ``fds`` ({kind: namespace fd}) in the order to join them: those
    that the user namespace being joined does not own (the host's network, say)
    first, while the host's capabilities still hold, then the user namespace, then
    the ones it owns (its capabilities are needed there)."""
    kinds = [k for k in JOIN_ORDER if k in fds]
    if "user" not in fds:
        return kinds
    user = os.fstat(fds["user"])
    before = []
    for kind in kinds:
        if kind == "user":
            continue
        try:
            owner = fcntl.ioctl(fds[kind], NS_GET_USERNS)
        except OSError:
            continue        # EPERM: owned outside our view; join it after
        try:
            st = os.fstat(owner)
        finally:
            os.close(owner)
        if (st.st_dev, st.st_ino) != (user.st_dev, user.st_ino):
            before.append(kind)
    return before + [k for k in kinds if k not in before]


class Plan:
    """What the child does: namespaces to join (opened fds) and flags to unshare."""

    def __init__(self, config):
        self.new = {}       # type -> True
        self.join = {}      # type -> path
        for i, ns in enumerate((config.get("linux") or {}).get("namespaces") or ()):
            kind = ns["type"]
            if ns.get("path"):
                self.join[kind] = ns["path"]
            else:
                self.new[kind] = True
        self.fds = {}
        self.joined = set()

    def has(self, kind):
        """The container has its own ``kind`` namespace (new or joined)."""
        return kind in self.new or kind in self.join

    @property
    def new_user(self):
        return "user" in self.new

    @property
    def unshare_flags(self):
        flags = 0
        for kind in self.new:
            if kind != "user":
                flags |= TYPES[kind][0]
        return flags

    def open(self):
        """Open the namespaces to join, in the runtime's mount namespace, so that a bad
        path fails create before anything is started."""
        for i, kind in enumerate(JOIN_ORDER):
            path = self.join.get(kind)
            if path is None:
                continue
            try:
                self.fds[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise SysError("open namespace", e.errno, path) from None

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def join_all(self, until=None):
        """Join the namespaces (join_order), up to and including ``until``, or the
        rest."""
        for kind in join_order(self.fds):
            if kind in self.joined:
                continue
            linux.setns(self.fds[kind], TYPES[kind][0], f"{kind} namespace {self.join[kind]}")
            self.joined.add(kind)
            if kind == until:
                break


def id_map_text(mappings):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def write_id_maps(pid, uid_mappings, gid_mappings):
    """Write the child's uid_map and gid_map from the parent user namespace.

    Root writes them directly.  An unprivileged user may write only a single
    mapping of its own id (after denying setgroups); anything else goes through
    the setuid helpers newuidmap/newgidmap (package uidmap), as rootless runc does."""
    own = {"uid_map": os.geteuid(), "gid_map": os.getegid()}
    for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
        if not maps:
            continue
        if own["uid_map"] == 0 or (len(maps) == 1 and maps[0]["hostID"] == own[name]
                                   and maps[0]["size"] == 1):
            if name == "gid_map" and own["uid_map"] != 0:
                linux.write_file(f"/proc/{pid}/setgroups", "deny", "write setgroups")
            linux.write_file(f"/proc/{pid}/{name}", id_map_text(maps), f"write {name}")
        else:
            _run_map_helper("newuidmap" if name == "uid_map" else "newgidmap", pid, maps)


def _run_map_helper(helper, pid, maps):
    import shutil
    import subprocess

    path = shutil.which(helper)
    if path is None:
        raise Error(f"rootless: {helper} (package uidmap) is needed to map "
                    f"{id_map_text(maps).strip()!r}; without it only your own id can be mapped")
    argv = [path, str(pid)] + [str(m[k]) for m in maps for k in ("containerID", "hostID", "size")]
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise Error(f"{helper}: {res.stderr.strip() or 'exit status ' + str(res.returncode)}")


def write_time_offsets(offsets):
    """linux.timeOffsets for a new time namespace (before any process enters it)."""
    lines = "".join(f"{clock} {v.get('secs', 0)} {v.get('nanosecs', 0)}\n"
                    for clock, v in offsets.items())
    linux.write_file("/proc/self/timens_offsets", lines, "write time offsets")


def bring_up_loopback():
    """Set IFF_UP on lo with an ioctl: netlink libraries cost ~120 ms to import."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
    except OSError as e:
        raise SysError("bring up loopback", e.errno, "lo") from None
    finally:
        s.close()


def check_supported(plan):
    """Fail early, with the namespace's name, when the kernel lacks one."""
    for kind in plan.new:
        if not os.path.exists(f"/proc/self/ns/{TYPES[kind][1]}"):
            raise Error(f"{kind} namespace is not supported by this kernel")

