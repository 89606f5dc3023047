"""Linux system calls the standard library lacks.

Thin wrappers over the compiled cffi module ``_sys``: each raises
``runtime.errors.SysError`` naming the operation and its target, so callers read as
logic.  Kernel and libc constants are re-exported under their header names
(``linux.MS_BIND``, ``linux.CLONE_NEWNS``...).
"""

import os

from ..errors import SysError
from ._sys import ffi, lib

globals().update({n: getattr(lib, n) for n in dir(lib) if isinstance(getattr(lib, n), int)})

_NULL = ffi.NULL


def _path(p):
    return _NULL if p is None else os.fsencode(p)


def _check(ret, op, target=None):
    if ret < 0:
        raise SysError(op, ffi.errno, target)
    return ret


def write_file(path, value, what=None):
    """Write ``value`` to a kernel file (/proc, /sys, cgroupfs) in one write(2)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(value).encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise SysError(what or "write", e.errno, path) from None


def unshare(flags):
    _check(lib.unshare(flags), "unshare")


def setns(fd, nstype, target=None):
    _check(lib.setns(fd, nstype), "setns", target)


def mount(source, target, fstype=None, flags=0, data=None, what=None):
    ret = lib.mount(_path(source), _path(target), _path(fstype), flags,
                    _NULL if not data else os.fsencode(data))
    if ret < 0:
        raise SysError("mount", ffi.errno, what or f"{source} to {target}")


def umount(target, flags=0):
    _check(lib.umount2(_path(target), flags), "umount", target)


def pivot_root(new_root, put_old):
    _check(lib.rt_pivot_root(_path(new_root), _path(put_old)), "pivot_root", new_root)


def mount_setattr(dfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0,
                  what=None):
    attr = ffi.new("struct mount_attr *")
    attr.attr_set = attr_set
    attr.attr_clr = attr_clr
    attr.propagation = propagation
    attr.userns_fd = userns_fd
    ret = lib.rt_mount_setattr(dfd, _path(path), flags, attr, ffi.sizeof("struct mount_attr"))
    _check(ret, "mount_setattr", what or path)


def open_tree(dfd, path, flags, what=None):
    return _check(lib.rt_open_tree(dfd, _path(path), flags), "open_tree", what or path)


def move_mount(from_dfd, from_path, to_dfd, to_path, flags, what=None):
    ret = lib.rt_move_mount(from_dfd, _path(from_path), to_dfd, _path(to_path), flags)
    _check(ret, "move_mount", what or to_path)


def openat2(dfd, path, flags, resolve, mode=0):
    how = ffi.new("struct open_how *")
    how.flags = flags
    how.mode = mode
    how.resolve = resolve
    ret = lib.rt_openat2(dfd, _path(path), how, ffi.sizeof("struct open_how"))
    return _check(ret, "open", path)


def sethostname(name):
    raw = name.encode()
    _check(lib.sethostname(raw, len(raw)), "sethostname", name)


def setdomainname(name):
    raw = name.encode()
    _check(lib.setdomainname(raw, len(raw)), "setdomainname", name)


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0, what="prctl"):
    return _check(lib.prctl(option, arg2, arg3, arg4, arg5), what)


def capget(pid=0):
    """Return (effective, permitted, inheritable) as 64-bit masks."""
    hdr = ffi.new("rt_cap_header *")
    hdr.version = lib._LINUX_CAPABILITY_VERSION_3
    hdr.pid = pid
    data = ffi.new("rt_cap_data[2]")
    _check(lib.rt_capget(hdr, data), "capget")
    return tuple(getattr(data[0], f) | getattr(data[1], f) << 32
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective, permitted, inheritable):
    hdr = ffi.new("rt_cap_header *")
    hdr.version = lib._LINUX_CAPABILITY_VERSION_3
    data = ffi.new("rt_cap_data[2]")
    for i, shift in enumerate((0, 32)):
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(lib.rt_capset(hdr, data), "capset")


def personality(persona):
    _check(lib.personality(persona), "personality", hex(persona))


def join_session_keyring(name):
    _check(lib.rt_keyctl_join(_path(name)), "join session keyring", name)


def cloexec_from(first):
    """Mark every fd from ``first`` up close-on-exec."""
    _check(lib.rt_close_range(first, 0xFFFFFFFF, lib.CLOSE_RANGE_CLOEXEC), "close_range")


def pidfd_send_signal(pidfd, sig):
    _check(lib.rt_pidfd_send_signal(pidfd, sig), "kill")


def memfd_exec_helper():
    """A sealed close-on-exec memfd holding the static exec helper (init_helper.c)."""
    return _check(lib.rt_memfd_exec(), "memfd_create", "runtime-init")


def sched_setattr(policy, nice=0, priority=0, flags=0, runtime=0, deadline=0, period=0):
    attr = ffi.new("struct rt_sched_attr *")
    attr.size = ffi.sizeof("struct rt_sched_attr")
    attr.sched_policy = policy
    attr.sched_flags = flags
    attr.sched_nice = nice
    attr.sched_priority = priority
    attr.sched_runtime = runtime
    attr.sched_deadline = deadline
    attr.sched_period = period
    _check(lib.rt_sched_setattr(0, attr, 0), "sched_setattr")


def ioprio_set(which, who, ioprio):
    _check(lib.rt_ioprio_set(which, who, ioprio), "ioprio_set")


def set_mempolicy(mode, nodes=()):
    """``mode`` may carry MPOL_F_* flags; ``nodes`` are NUMA node numbers."""
    bits = 64
    maxnode = (max(nodes) // bits + 1) * bits if nodes else 0
    mask = ffi.new("unsigned long[]", max(maxnode // bits, 1))
    for n in nodes:
        mask[n // bits] |= 1 << (n % bits)
    _check(lib.rt_set_mempolicy(mode, mask if nodes else _NULL, maxnode + 1 if nodes else 0),
           "set_mempolicy")


def bpf(cmd, attr, what="bpf"):
    """bpf(2) with ``attr`` a bytearray laid out as the kernel's union bpf_attr;
    the kernel's writes into it are visible to the caller."""
    buf = ffi.from_buffer(attr)
    return _check(lib.rt_bpf(cmd, buf, len(attr)), what)


#: set in the environment of the re-executed interpreter (and removed at once): the
#: guard against re-executing in a loop where the view's read-only flag is not seen
_SEALED_ENV = "_RUNTIME_SEALED_EXE"


def exe_is_sealed():
    """Whether /proc/self/exe cannot be reopened for writing: a memfd (sealed by
    whoever made it) or a file on a read-only mount."""
    try:
        if os.readlink("/proc/self/exe").startswith("/memfd:"):
            return True
        return bool(os.statvfs("/proc/self/exe").f_flag & os.ST_RDONLY)
    except OSError:
        return False


def reexec_sealed(argv):
    """Replace this process with the same interpreter and ``argv`` (sys.orig_argv),
    executed through a view of its binary that cannot be written: a detached
    read-only bind mount of it (open_tree + mount_setattr; no copy, no mount in any
    namespace), else a sealed memfd copy (runc's way, for kernels or users that
    cannot make the mount).  Afterwards /proc/<pid>/exe of this process and of every
    fork of it (the processes that enter a container) leads to no writable host
    binary (the CVE-2019-5736 class), whatever capabilities a container holds.
    Returns without exec'ing only when already sealed."""
    if os.environ.pop(_SEALED_ENV, None) is not None or exe_is_sealed():
        return
    binary = os.path.realpath("/proc/self/exe")
    try:
        fd = open_tree(AT_FDCWD, binary, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
        try:
            mount_setattr(fd, "", AT_EMPTY_PATH,
                          attr_set=MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
        except SysError:
            os.close(fd)
            raise
    except SysError:
        fd = _memfd_copy(binary)
    os.environ[_SEALED_ENV] = "1"
    try:
        os.execve(fd, argv, os.environ)
    except OSError as e:
        raise SysError("re-exec the interpreter", e.errno, binary) from None


def _memfd_copy(binary):
    import fcntl

    fd = os.memfd_create("runtime-python", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        with open(binary, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            done = 0
            while done < size:
                n = os.sendfile(fd, src.fileno(), done, size - done)
                if n == 0:
                    break
                done += n
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK |
                    fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except OSError as e:
        os.close(fd)
        raise SysError("copy the interpreter into a sealed memfd", e.errno, binary) from None
    return fd
