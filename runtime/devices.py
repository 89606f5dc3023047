"""/dev inside the container: default devices, linux.devices, and the symlinks
runtime-linux.md requires."""

import os
import stat

from . import linux
from .errors import Error, SysError
from .rootfs import fd_path, make_path, resolve

# name -> (type, major, minor): runc's default devices, mode 0666, owned by root
DEFAULT_DEVICES = {
    "null": ("c", 1, 3),
    "zero": ("c", 1, 5),
    "full": ("c", 1, 7),
    "random": ("c", 1, 8),
    "urandom": ("c", 1, 9),
    "tty": ("c", 5, 0),
}

SYMLINKS = (
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
)

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def needs_dev_setup(config):
    """Devices are made unless the config bind-mounts something over /dev."""
    for m in config.get("mounts") or ():
        if m["destination"].rstrip("/") == "/dev":
            opts = m.get("options") or ()
            return not ("bind" in opts or "rbind" in opts or m.get("type") == "bind")
    return True


def create_all(root_fd, config, terminal):
    """Default devices, then linux.devices (which may override them), then the
    symlinks and /dev/console's placeholder."""
    old_umask = os.umask(0)
    try:
        _create_all(root_fd, config, terminal)
    finally:
        os.umask(old_umask)


def _create_all(root_fd, config, terminal):
    devices = {f"/dev/{name}": {"path": f"/dev/{name}", "type": t, "major": ma, "minor": mi,
                                "fileMode": 0o666, "uid": 0, "gid": 0}
               for name, (t, ma, mi) in DEFAULT_DEVICES.items()}
    requested = set()
    for dev in (config.get("linux") or {}).get("devices") or ():
        devices[dev["path"]] = dev
        requested.add(dev["path"])
    for path, dev in devices.items():
        create_device(root_fd, dev, replace=path not in requested)
    dev_fd = make_path(root_fd, "/dev", True)
    try:
        for target, name in SYMLINKS:
            _symlink(target, name, dev_fd)
        if os.path.exists("/proc/kcore"):
            _symlink("/proc/kcore", "core", dev_fd)
        try:
            os.unlink("ptmx", dir_fd=dev_fd)
        except FileNotFoundError:
            pass
        _symlink("pts/ptmx", "ptmx", dev_fd)
        if terminal:
            try:
                os.close(os.open("console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                                 0o600, dir_fd=dev_fd))
            except FileExistsError:
                pass
    finally:
        os.close(dev_fd)


def _symlink(target, name, dir_fd):
    try:
        os.symlink(target, name, dir_fd=dir_fd)
    except FileExistsError:
        pass


def create_device(root_fd, dev, replace=True):
    """Make the node; a default device replaces what is there, a linux.devices
    entry must not clash with an existing file that is not that same device."""
    path = dev["path"]
    kind = _TYPES[dev["type"]]
    mode = (dev.get("fileMode", 0o666) & 0o7777) | kind
    rdev = os.makedev(dev.get("major", 0), dev.get("minor", 0)) if dev["type"] != "p" else 0
    parent = make_path(root_fd, os.path.dirname(path), True)
    name = os.path.basename(path)
    try:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not replace:
            if stat.S_IFMT(st.st_mode) == kind and (kind == stat.S_IFIFO or st.st_rdev == rdev):
                return
            raise Error(f"linux.devices: {path} already exists in the rootfs and is not "
                        f"the requested device")
        if st is not None:
            os.unlink(name, dir_fd=parent)
        try:
            os.mknod(name, mode, rdev, dir_fd=parent)
        except PermissionError:
            # In a user namespace mknod is refused: bind the host's node instead.
            _bind_host_device(root_fd, parent, name, path)
            return
        except OSError as e:
            raise SysError("mknod", e.errno, path) from None
        os.chown(name, dev.get("uid", 0), dev.get("gid", 0), dir_fd=parent, follow_symlinks=False)
    finally:
        os.close(parent)


def _bind_host_device(root_fd, parent_fd, name, path):
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600,
                     dir_fd=parent_fd))
    target = resolve(root_fd, path)
    try:
        linux.mount(path, fd_path(target), None, linux.MS_BIND, what=f"bind device {path}")
    finally:
        os.close(target)
