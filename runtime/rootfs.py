"""The container's root filesystem: mounts in config order, pivot_root, masked and
read-only paths.

Every mount destination is resolved with openat2(RESOLVE_IN_ROOT) to an O_PATH fd
inside the rootfs and mounted through that fd (``/proc/self/fd/N`` for mount(2),
the fd itself for move_mount(2)), so a destination that is, or becomes, a symlink
cannot send a mount outside the rootfs (the CVE-2021-30465 class).
"""

import errno
import os
import stat

from . import linux
from .config import proc_mount_refusal
from .errors import Error, SysError

_L = linux

# option -> (flags to clear, flags to set) for mount(2)
FLAGS = {
    "async": (_L.MS_SYNCHRONOUS, 0), "sync": (0, _L.MS_SYNCHRONOUS),
    "atime": (_L.MS_NOATIME, 0), "noatime": (0, _L.MS_NOATIME),
    "defaults": (0, 0),
    "dev": (_L.MS_NODEV, 0), "nodev": (0, _L.MS_NODEV),
    "diratime": (_L.MS_NODIRATIME, 0), "nodiratime": (0, _L.MS_NODIRATIME),
    "dirsync": (0, _L.MS_DIRSYNC),
    "exec": (_L.MS_NOEXEC, 0), "noexec": (0, _L.MS_NOEXEC),
    "iversion": (0, _L.MS_I_VERSION), "noiversion": (_L.MS_I_VERSION, 0),
    "lazytime": (0, _L.MS_LAZYTIME), "nolazytime": (_L.MS_LAZYTIME, 0),
    "loud": (_L.MS_SILENT, 0), "silent": (0, _L.MS_SILENT),
    "mand": (0, _L.MS_MANDLOCK), "nomand": (_L.MS_MANDLOCK, 0),
    "relatime": (0, _L.MS_RELATIME), "norelatime": (_L.MS_RELATIME, 0),
    "strictatime": (0, _L.MS_STRICTATIME), "nostrictatime": (_L.MS_STRICTATIME, 0),
    "ro": (0, _L.MS_RDONLY), "rw": (_L.MS_RDONLY, 0),
    "suid": (_L.MS_NOSUID, 0), "nosuid": (0, _L.MS_NOSUID),
    "symfollow": (_L.MS_NOSYMFOLLOW, 0), "nosymfollow": (0, _L.MS_NOSYMFOLLOW),
    "remount": (0, _L.MS_REMOUNT),
    "bind": (0, _L.MS_BIND), "rbind": (0, _L.MS_BIND | _L.MS_REC),
}

PROPAGATION = {
    "private": _L.MS_PRIVATE, "rprivate": _L.MS_PRIVATE | _L.MS_REC,
    "shared": _L.MS_SHARED, "rshared": _L.MS_SHARED | _L.MS_REC,
    "slave": _L.MS_SLAVE, "rslave": _L.MS_SLAVE | _L.MS_REC,
    "unbindable": _L.MS_UNBINDABLE, "runbindable": _L.MS_UNBINDABLE | _L.MS_REC,
}

_ATIME = _L.MOUNT_ATTR__ATIME
# recursive option -> (mount_setattr attrs to clear, to set), applied with AT_RECURSIVE
RECURSIVE = {
    "rro": (0, _L.MOUNT_ATTR_RDONLY), "rrw": (_L.MOUNT_ATTR_RDONLY, 0),
    "rnosuid": (0, _L.MOUNT_ATTR_NOSUID), "rsuid": (_L.MOUNT_ATTR_NOSUID, 0),
    "rnodev": (0, _L.MOUNT_ATTR_NODEV), "rdev": (_L.MOUNT_ATTR_NODEV, 0),
    "rnoexec": (0, _L.MOUNT_ATTR_NOEXEC), "rexec": (_L.MOUNT_ATTR_NOEXEC, 0),
    "rnodiratime": (0, _L.MOUNT_ATTR_NODIRATIME), "rdiratime": (_L.MOUNT_ATTR_NODIRATIME, 0),
    "rrelatime": (_ATIME, _L.MOUNT_ATTR_RELATIME), "rnorelatime": (_ATIME, 0),
    "rnoatime": (_ATIME, _L.MOUNT_ATTR_NOATIME), "ratime": (_ATIME, 0),
    "rstrictatime": (_ATIME, _L.MOUNT_ATTR_STRICTATIME), "rnostrictatime": (_ATIME, 0),
    "rnosymfollow": (0, _L.MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (_L.MOUNT_ATTR_NOSYMFOLLOW, 0),
}

# per-mount flags a bind mount can change, as mount_setattr attributes
_BIND_ATTRS = {
    _L.MS_RDONLY: _L.MOUNT_ATTR_RDONLY, _L.MS_NOSUID: _L.MOUNT_ATTR_NOSUID,
    _L.MS_NODEV: _L.MOUNT_ATTR_NODEV, _L.MS_NOEXEC: _L.MOUNT_ATTR_NOEXEC,
    _L.MS_NODIRATIME: _L.MOUNT_ATTR_NODIRATIME, _L.MS_NOSYMFOLLOW: _L.MOUNT_ATTR_NOSYMFOLLOW,
}


def _mount_attrs(flags):
    """The mount_setattr attributes of the MS_* ``flags`` a bind mount can change."""
    attrs = 0
    for flag, attr in _BIND_ATTRS.items():
        if flags & flag:
            attrs |= attr
    return attrs


EXTRA_OPTIONS = ("tmpcopyup", "idmap", "ridmap")

# Options mount(8) knows but keeps to itself (fstab and user-mount policy): they
# are not passed to the kernel.
USERSPACE_OPTIONS = frozenset(("auto", "noauto", "user", "nouser", "users", "nousers", "group",
                               "owner", "noowner", "nofail", "_netdev"))

_RESOLVE = _L.RESOLVE_IN_ROOT | _L.RESOLVE_NO_MAGICLINKS
_O_PATH = os.O_PATH | os.O_CLOEXEC


class Mount:
    """One ``mounts`` entry, its options sorted into what each syscall takes."""

    def __init__(self, index, entry, bundle):
        self.index = index
        self.destination = "/" + entry["destination"].lstrip("/")
        self.type = entry.get("type") or ""
        self.source = entry.get("source") or ""
        self.flags = 0
        self.clear = 0
        self.propagation = []
        self.rec_set = 0
        self.rec_clr = 0
        self.data = []
        self.extra = set()
        for opt in entry.get("options") or ():
            if opt in FLAGS:
                clr, st = FLAGS[opt]
                self.flags = (self.flags & ~clr) | st
                self.clear |= clr
            elif opt in PROPAGATION:
                self.propagation.append(PROPAGATION[opt])
            elif opt in RECURSIVE:
                clr, st = RECURSIVE[opt]
                self.rec_clr |= clr
                self.rec_set = (self.rec_set & ~clr) | st
            elif opt in EXTRA_OPTIONS:
                self.extra.add(opt)
            elif opt in USERSPACE_OPTIONS or opt.startswith(("x-", "comment=")):
                continue
            else:
                self.data.append(opt)
        self.bind = bool(self.flags & _L.MS_BIND) or self.type == "bind"
        if self.bind:
            self.flags |= _L.MS_BIND
            if self.source and not self.source.startswith("/"):
                self.source = os.path.join(bundle, self.source)
        self.uid_mappings = entry.get("uidMappings")
        self.gid_mappings = entry.get("gidMappings")

    @property
    def idmapped(self):
        return bool(self.extra & {"idmap", "ridmap"} or self.uid_mappings)

    def what(self):
        return f"{self.source or self.type} to {self.destination}"


# -- path resolution inside the rootfs ------------------------------------------
_EAGAIN_RETRIES = 128


def resolve(root_fd, path, flags=_O_PATH):
    """An fd for ``path`` resolved inside the tree of ``root_fd`` (symlinks included).
    openat2 fails with EAGAIN when a rename or mount anywhere on the system races
    a lookup that crosses "..": it asks to be retried."""
    rel = path.lstrip("/") or "."
    for _ in range(_EAGAIN_RETRIES):
        try:
            return linux.openat2(root_fd, rel, flags, _RESOLVE)
        except SysError as e:
            if e.errno != errno.EAGAIN:
                raise
    return linux.openat2(root_fd, rel, flags, _RESOLVE)


_MAX_LINKS = 40  # as the kernel's ELOOP limit


def make_path(root_fd, path, is_dir=True, mode=0o755, _links=0):
    """Create ``path`` (and its parents) inside the root; return an O_PATH fd of it.
    Each missing component is made in its already resolved parent, so nothing is
    ever created outside the root; a dangling symlink is followed, inside the root,
    and its target made."""
    parts = [p for p in path.split("/") if p and p != "."]
    try:
        return resolve(root_fd, path)
    except SysError as e:
        if e.errno != 2:
            raise
    fd = os.open(".", _O_PATH | os.O_DIRECTORY, dir_fd=root_fd)
    for i, name in enumerate(parts):
        sub = "/".join(parts[: i + 1])
        last = i == len(parts) - 1
        try:
            nfd = resolve(root_fd, sub)
        except SysError as e:
            if e.errno != 2:
                os.close(fd)
                raise
            try:
                if last and not is_dir:
                    os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                                     mode, dir_fd=fd))
                else:
                    os.mkdir(name, mode, dir_fd=fd)
            except FileExistsError:
                # a dangling symlink (or a racing creator): make its target instead
                target = _link_target(fd, name)
                if target is not None:
                    os.close(fd)
                    if _links >= _MAX_LINKS:
                        raise SysError("mkdir", errno.ELOOP, path) from None
                    if not target.startswith("/"):
                        target = "/".join(parts[:i] + [target])
                    rest = parts[i + 1:]
                    return make_path(root_fd, "/".join([target] + rest), is_dir, mode, _links + 1)
            except OSError as e2:
                os.close(fd)
                raise SysError("mkdir" if (is_dir or not last) else "create", e2.errno, path)
            nfd = resolve(root_fd, sub)
        os.close(fd)
        fd = nfd
    return fd


def _link_target(dir_fd, name):
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def fd_path(fd):
    return f"/proc/self/fd/{fd}"


# -- the mount sequence ---------------------------------------------------------
class Rootfs:
    """Builds the container's filesystem view; used by the init process."""

    def __init__(self, config, bundle, cgroup_paths=None, cgroupns=False, userns=False,
                 idmap_fds=None):
        self.config = config
        self.linux = config.get("linux") or {}
        root = config["root"]["path"]
        self.path = root if root.startswith("/") else os.path.join(bundle, root)
        self.bundle = bundle
        self.mounts = [Mount(i, m, bundle) for i, m in enumerate(config.get("mounts") or ())]
        self.cgroup_paths = cgroup_paths or {}
        self.cgroupns = cgroupns
        self.userns = userns
        self.idmap_fds = idmap_fds or {}
        self.root_fd = -1
        self._host_facts = {}
        #: read-only mounts made read-write until the container's files are in
        #: place under them (finish_readonly)
        self.deferred_readonly = []

    # Before pivot_root --------------------------------------------------------
    def prepare(self):
        prop = self.linux.get("rootfsPropagation")
        flag = PROPAGATION[prop] if prop else _L.MS_SLAVE | _L.MS_REC
        linux.mount(None, "/", None, flag, what=f"set propagation of / to {prop or 'rslave'}")
        self._parent_private()
        linux.mount(self.path, self.path, None, _L.MS_BIND | _L.MS_REC,
                    what=f"bind rootfs {self.path}")
        self.root_fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        for m in self.mounts:
            self.mount(m)

    def _parent_private(self):
        """pivot_root refuses a new root whose parent mount is shared."""
        path = os.path.realpath(self.path)
        best = "/"
        for mp, opts in _mountinfo_points():
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best):
                if "shared:" in opts:
                    best = mp
        try:
            linux.mount(None, best, None, _L.MS_PRIVATE)
        except SysError:
            pass

    def mount(self, m):
        if m.type == "cgroup" or m.type == "cgroup2":
            if not m.bind:
                return self._mount_cgroup(m)
        if m.bind:
            return self._bind(m)
        dest = make_path(self.root_fd, m.destination, True)
        try:
            self._check_inside_proc(m, dest)
            old = None
            if "tmpcopyup" in m.extra:
                old = os.open(fd_path(dest), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            data = list(m.data)
            label = self.linux.get("mountLabel")
            if label and m.type not in UNLABELLED_TYPES:
                data.append(_context_option(label))
            flags = m.flags
            if flags & _L.MS_RDONLY and self._written_below(m):
                flags &= ~_L.MS_RDONLY
                self.deferred_readonly.append(m)
            if m.type in ("proc", "sysfs"):
                self._check_proc_dest(dest, m)
            try:
                linux.mount(m.source or m.type, fd_path(dest), m.type, flags,
                            ",".join(data) or None, what=m.what())
            except SysError as e:
                if not (e.errno == errno.EPERM and m.type == "sysfs" and self.userns):
                    raise
                # A user namespace may mount sysfs only with a network namespace of
                # its own; without one, the host's /sys, bound (as runc does).
                self._bind_sysfs(m, dest, flags)
            if label and m.type == "mqueue":
                self._label_root(m, label)
            if old is not None:
                new = resolve(self.root_fd, m.destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    _copy_tree(old, new)
                finally:
                    os.close(new)
                    os.close(old)
            self._after_mount(m, dest)
        finally:
            os.close(dest)

    def _bind_sysfs(self, m, dest, flags):
        linux.mount("/sys", fd_path(dest), None, _L.MS_BIND | _L.MS_REC, what="bind /sys")
        attrs = _mount_attrs(flags)
        if attrs:
            top = resolve(self.root_fd, m.destination)
            try:
                linux.mount_setattr(top, "", _L.AT_EMPTY_PATH | _L.AT_RECURSIVE, attrs, 0,
                                    what=f"bind /sys to {m.destination}")
            finally:
                os.close(top)

    def _after_mount(self, m, dest):
        if m.propagation or m.rec_set or m.rec_clr:
            # Re-resolve: the fd still names the covered directory, not the new mount.
            top = resolve(self.root_fd, m.destination)
            try:
                for p in m.propagation:
                    linux.mount(None, fd_path(top), None, p, what=f"propagation of {m.destination}")
                if m.rec_set or m.rec_clr:
                    linux.mount_setattr(top, "", _L.AT_EMPTY_PATH | _L.AT_RECURSIVE,
                                        m.rec_set, m.rec_clr, what=m.destination)
            finally:
                os.close(top)

    def _label_root(self, m, label):
        # re-resolved: the fd from before the mount names the covered directory
        top = resolve(self.root_fd, m.destination)
        try:
            os.setxattr(fd_path(top), "security.selinux", label.encode())
        except OSError as e:
            raise SysError(f"label {m.destination} with linux.mountLabel", e.errno) from None
        finally:
            os.close(top)

    def _written_below(self, m):
        """Will the runtime write under this mount after making it: /dev (device
        nodes, links, /dev/pts, /dev/shm...), or the destination of a later mount?"""
        below = m.destination.rstrip("/") + "/"
        return m.destination == "/dev" or any(
            later.destination.startswith(below) for later in self.mounts[m.index + 1:])

    def _check_inside_proc(self, m, dest, source_is_proc=None):
        """config.proc_mount_refusal, on where ``dest`` really is: a destination
        may reach the container's /proc through symlinks of the rootfs."""
        where = os.readlink(fd_path(dest))
        root = os.readlink(fd_path(self.root_fd))
        if where != root and not where.startswith(root.rstrip("/") + "/"):
            return
        inside = "/" + where[len(root):].lstrip("/")
        refusal = proc_mount_refusal(inside, m.type, source_is_proc)
        if refusal:
            raise Error(f"mounts[{m.index}].destination: {refusal}"
                        + (f" (reached through {m.destination})" if inside != m.destination else ""))

    def _check_proc_dest(self, dest, m):
        """proc and sysfs only on a real directory (no symlink games with /proc)."""
        st = os.stat(fd_path(dest))
        if not stat.S_ISDIR(st.st_mode):
            raise Error(f"mounts[{m.index}]: {m.type} mount destination {m.destination} "
                        "is not a directory")

    def _bind(self, m):
        try:
            src_st = os.stat(m.source)
        except OSError as e:
            raise SysError("bind mount source", e.errno, m.source) from None
        recursive = bool(m.flags & _L.MS_REC)
        if m.index in self.idmap_fds:
            tree = self.idmap_fds.pop(m.index)
        else:
            tree = linux.open_tree(
                _L.AT_FDCWD, m.source,
                _L.OPEN_TREE_CLONE | _L.OPEN_TREE_CLOEXEC | (_L.AT_RECURSIVE if recursive else 0),
                what=m.source)
        try:
            dest = make_path(self.root_fd, m.destination, stat.S_ISDIR(src_st.st_mode))
            try:
                self._check_inside_proc(m, dest, m.destination == "/proc" and _fstype(m.source) == "proc")
                linux.move_mount(tree, "", dest, "",
                                 _L.MOVE_MOUNT_F_EMPTY_PATH | _L.MOVE_MOUNT_T_EMPTY_PATH,
                                 what=m.what())
            finally:
                os.close(dest)
            attr_set, attr_clr = _mount_attrs(m.flags), _mount_attrs(m.clear & ~m.flags)
            if m.flags & (_L.MS_NOATIME | _L.MS_STRICTATIME | _L.MS_RELATIME) or \
                    m.clear & (_L.MS_NOATIME | _L.MS_STRICTATIME | _L.MS_RELATIME):
                attr_clr |= _ATIME
                if m.flags & _L.MS_NOATIME:
                    attr_set |= _L.MOUNT_ATTR_NOATIME
                elif m.flags & _L.MS_STRICTATIME:
                    attr_set |= _L.MOUNT_ATTR_STRICTATIME
            if attr_set or attr_clr:
                linux.mount_setattr(tree, "", _L.AT_EMPTY_PATH, attr_set, attr_clr, what=m.what())
            for p in m.propagation:
                flags = _L.AT_EMPTY_PATH | (_L.AT_RECURSIVE if p & _L.MS_REC else 0)
                linux.mount_setattr(tree, "", flags, propagation=p & ~_L.MS_REC, what=m.what())
            if m.rec_set or m.rec_clr:
                linux.mount_setattr(tree, "", _L.AT_EMPTY_PATH | _L.AT_RECURSIVE,
                                    m.rec_set, m.rec_clr, what=m.what())
        finally:
            os.close(tree)

    def _host(self, fact):
        """A fact about the host's cgroups, read once per container: each read scans
        the mount table, which every mount the container makes lengthens (2000
        cgroup mounts once took minutes)."""
        if fact not in self._host_facts:
            self._host_facts[fact] = _HOST_FACTS[fact]()
        return self._host_facts[fact]

    def _mount_cgroup(self, m):
        """A cgroup filesystem showing the container's own cgroup: cgroup2 or a
        tmpfs of per-controller v1 hierarchies; the container's cgroup namespace
        root when it has one, else a bind of its cgroup directory."""
        ro = m.flags & _L.MS_RDONLY
        flags = m.flags & ~_L.MS_RDONLY
        dest = make_path(self.root_fd, m.destination, True)
        try:
            self._check_inside_proc(m, dest)
            if not self._host("cgroup2"):
                linux.mount("tmpfs", fd_path(dest), "tmpfs", flags, "mode=755", what=m.what())
            elif self.cgroupns:
                linux.mount("cgroup2", fd_path(dest), "cgroup2", m.flags, what=m.what())
                return
            else:
                path = self.cgroup_paths.get("") or self._host("own cgroup2")
                self._bind_ro(path, dest, m.flags, m.what())
                return
        finally:
            os.close(dest)
        own = self._host("own cgroups v1")
        for mountpoint, subsystems in self._host("v1 mounts"):
            name = os.path.basename(mountpoint)
            sub = make_path(self.root_fd, f"{m.destination}/{name}", True)
            try:
                if self.cgroupns:
                    linux.mount("cgroup", fd_path(sub), "cgroup", m.flags, ",".join(subsystems),
                                what=f"cgroup {name} to {m.destination}/{name}")
                else:
                    host = None
                    for s in subsystems:
                        host = self.cgroup_paths.get(s) or host
                    if host is None:
                        rel = own.get(",".join(subsystems), "/")
                        host = mountpoint + rel
                    self._bind_ro(host, sub, m.flags, f"cgroup {host} to {m.destination}/{name}")
            finally:
                os.close(sub)
            for s in subsystems:
                if s != name and not s.startswith("name="):
                    link = f"{m.destination}/{s}".lstrip("/")
                    try:
                        os.symlink(name, link, dir_fd=self.root_fd)
                    except FileExistsError:
                        pass
        if ro:
            top = resolve(self.root_fd, m.destination)
            try:
                linux.mount_setattr(top, "", _L.AT_EMPTY_PATH, _L.MOUNT_ATTR_RDONLY, 0,
                                    what=m.destination)
            finally:
                os.close(top)

    def _bind_ro(self, source, dest_fd, flags, what):
        tree = linux.open_tree(_L.AT_FDCWD, source, _L.OPEN_TREE_CLONE | _L.OPEN_TREE_CLOEXEC,
                               what=source)
        try:
            linux.move_mount(tree, "", dest_fd, "",
                             _L.MOVE_MOUNT_F_EMPTY_PATH | _L.MOVE_MOUNT_T_EMPTY_PATH, what=what)
            attrs = _mount_attrs(flags)
            if attrs:
                linux.mount_setattr(tree, "", _L.AT_EMPTY_PATH, attrs, 0, what=what)
        finally:
            os.close(tree)

    def make_dir(self, path):
        os.close(make_path(self.root_fd, path, True))

    # The switch ---------------------------------------------------------------
    def pivot(self, no_pivot=False):
        os.chdir(self.path)
        if no_pivot:
            self._move_root()
        else:
            old_root = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                linux.pivot_root(".", ".")
                # The old root now sits on top of the new one; detach it, making it
                # a slave first so that the unmount does not propagate to the host.
                os.fchdir(old_root)
                linux.mount(None, ".", None, _L.MS_SLAVE | _L.MS_REC, what="old root")
                linux.umount(".", _L.MNT_DETACH)
            finally:
                os.close(old_root)
        os.chdir("/")
        os.close(self.root_fd)
        self.root_fd = -1
        prop = self.linux.get("rootfsPropagation")
        if prop:
            # Now that the rootfs is "/": before the pivot it was a bind of a host
            # directory, and setting "/" then changed the old root's propagation.
            linux.mount(None, "/", None, PROPAGATION[prop], what=f"set propagation of / to {prop}")

    def _move_root(self):
        """--no-pivot: detach every mount outside the rootfs, move the rootfs onto /
        and chroot into it (for a rootfs on a ramdisk, where pivot_root fails)."""
        root = os.path.realpath(self.path)
        points = sorted((mp for mp, _ in _mountinfo_points()), key=len, reverse=True)
        for mp in points:
            if mp == "/" or mp == root or mp.startswith(root + "/") or root.startswith(mp + "/"):
                continue
            try:
                linux.umount(mp, _L.MNT_DETACH)
            except SysError:
                pass
        linux.mount(self.path, "/", None, _L.MS_MOVE, what=f"move {self.path} to /")
        os.chroot(".")

    # After pivot_root ---------------------------------------------------------
    def readonly_paths(self):
        for path in self.linux.get("readonlyPaths") or ():
            try:
                linux.mount(path, path, None, _L.MS_BIND | _L.MS_REC, what=f"readonly path {path}")
            except SysError as e:
                if e.errno == 2:
                    continue
                raise
            linux.mount_setattr(_L.AT_FDCWD, path, _L.AT_RECURSIVE | _L.AT_SYMLINK_NOFOLLOW,
                                _L.MOUNT_ATTR_RDONLY, 0, what=f"readonly path {path}")

    def masked_paths(self):
        for path in self.linux.get("maskedPaths") or ():
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                linux.mount("tmpfs", path, "tmpfs", _L.MS_RDONLY, _label_data(self.linux),
                            what=f"mask {path}")
            else:
                linux.mount("/dev/null", path, None, _L.MS_BIND, what=f"mask {path}")

    def finish_readonly(self):
        """Make read-only the mounts that were made read-write for what goes under
        them (as runc does for a read-only /dev), the mount itself, not below."""
        if not self.deferred_readonly:
            return
        root = os.open("/", _O_PATH | os.O_DIRECTORY)
        try:
            for m in self.deferred_readonly:
                top = resolve(root, m.destination)
                try:
                    linux.mount_setattr(top, "", _L.AT_EMPTY_PATH, _L.MOUNT_ATTR_RDONLY, 0,
                                        what=f"{m.destination} read-only")
                finally:
                    os.close(top)
        finally:
            os.close(root)

    def readonly_root(self):
        if self.config["root"].get("readonly"):
            linux.mount_setattr(_L.AT_FDCWD, "/", 0, _L.MOUNT_ATTR_RDONLY, 0, what="/ read-only")

    def close(self):
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1


# linux.mountLabel goes to each filesystem the container mounts as a context= option,
# as runc does, except to these: proc, sysfs and cgroup take their labels from the
# policy (genfscon), and mqueue does not take the option (its root is labelled instead).
UNLABELLED_TYPES = frozenset({"proc", "sysfs", "cgroup", "cgroup2", "mqueue"})


def _context_option(label):
    # quoted: an MCS label's categories hold commas (s0:c1,c2)
    return f'context="{label}"'


def _label_data(lin):
    label = lin.get("mountLabel")
    return _context_option(label) if label else None




def _copy_tree(src_fd, dst_fd):
    """tmpcopyup: copy a directory's entries (recursively) into the new tmpfs."""
    for entry in os.scandir(src_fd):
        st = entry.stat(follow_symlinks=False)
        name = entry.name
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, st.st_mode & 0o7777, dir_fd=dst_fd)
            s = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=src_fd)
            d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=dst_fd)
            try:
                _copy_tree(s, d)
            finally:
                os.close(s)
                os.close(d)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
        elif stat.S_ISREG(st.st_mode):
            s = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=src_fd)
            d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, st.st_mode & 0o7777,
                        dir_fd=dst_fd)
            try:
                while True:
                    chunk = os.read(s, 1 << 16)
                    if not chunk:
                        break
                    os.write(d, chunk)
            finally:
                os.close(s)
                os.close(d)
        else:
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst_fd)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, st.st_mode & 0o7777, dir_fd=dst_fd)
    st = os.fstat(src_fd)
    os.fchmod(dst_fd, st.st_mode & 0o7777)
    os.fchown(dst_fd, st.st_uid, st.st_gid)


# -- what the host mounts -------------------------------------------------------
def _mountinfo():
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f.read().decode(errors="surrogateescape").splitlines():
            fields = line.split(" ")
            sep = fields.index("-")
            yield fields, fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""


def _fstype(path):
    """The filesystem type of the mount ``path`` is on (its mnt_id in mountinfo)."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            mnt_id = next((line.split()[1] for line in f if line.startswith("mnt_id:")), None)
    finally:
        os.close(fd)
    for fields, fstype, _ in _mountinfo():
        if fields[0] == mnt_id:
            return fstype
    return None


def _unescape(path):
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace(
        "\\134", "\\")


def _mountinfo_points():
    for fields, _, _ in _mountinfo():
        yield _unescape(fields[4]), " ".join(fields[6:fields.index("-")])


def _host_cgroup2():
    """True on a pure cgroup v2 host (cgroup2 mounted at /sys/fs/cgroup)."""
    found = None
    for fields, fstype, _ in _mountinfo():
        if _unescape(fields[4]) == "/sys/fs/cgroup":
            found = fstype
    return found == "cgroup2"


def _cgroup_v1_mounts():
    """(mountpoint, [subsystems]) of the host's v1 hierarchies under /sys/fs/cgroup."""
    out = []
    for fields, fstype, opts in _mountinfo():
        mp = _unescape(fields[4])
        if fstype != "cgroup" or not mp.startswith("/sys/fs/cgroup/"):
            continue
        subs = [o for o in opts.split(",") if o not in ("rw", "ro") and (
            o.startswith("name=") or o in _KNOWN_V1)]
        if subs:
            out.append((mp, subs))
    return out


_KNOWN_V1 = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
             "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"}


def _own_cgroups_v1():
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrls:
                out[ctrls] = path
    return out


def _own_cgroup2():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return "/sys/fs/cgroup" + line[3:].rstrip("\n")
    raise Error("no cgroup v2 membership in /proc/self/cgroup")


_HOST_FACTS = {"cgroup2": _host_cgroup2, "own cgroup2": _own_cgroup2,
               "own cgroups v1": _own_cgroups_v1, "v1 mounts": _cgroup_v1_mounts}
