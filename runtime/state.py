"""The state store: one directory per container under ``--root``.

    <root>/<id>/            mode 0700, flock()ed by every command that changes it
        state.json          written atomically (temp file + rename)
        config.json         the config as validated at create: later edits of the
                            bundle's config.json must not affect the container
        exec.fifo           present from create until start: the container is
                            "created" while it exists

Status is never trusted from the file alone: it is worked out from the live system
(the init pid *and* its start time, so that a reused pid is not taken for the
container; the exec fifo; the cgroup freezer).
"""

import errno
import fcntl
import os
import sys
import time

from . import OCI_VERSION, jsonfast
from .errors import Error, Exists, NotFound

DEFAULT_ROOT = "/run/runtime"

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid):
    """runc's rule: word characters, '+', '-', '.'; not '.' or '..'."""
    if not cid or cid in (".", "..") or not _ID_CHARS.issuperset(cid) or len(cid) > 1024:
        raise Error(f"invalid container id format: {cid!r}")


def now_rfc3339():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + (
        ".%09dZ" % (ns % 1_000_000_000))


def process_start_time(pid):
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None if the pid is gone
    or a zombie (a zombie init has exited: the container is stopped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class Container:
    """A container's state directory, locked while this object is in use."""

    def __init__(self, root, cid, dirfd):
        self.root = root
        self.id = cid
        self.dir = os.path.join(root, cid)
        self.dirfd = dirfd
        self.state = {}

    # -- files ------------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.dir, name)

    def save(self):
        write_atomic("state.json", jsonfast.dumps(self.state), dir_fd=self.dirfd)

    def save_config(self, config):
        write_atomic("config.json", jsonfast.dumps(config), dir_fd=self.dirfd)

    def config(self):
        try:
            with open(os.open("config.json", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dirfd),
                      "rb") as f:
                return jsonfast.loads(f.read())
        except (OSError, ValueError) as e:
            raise Error(f"container {self.id}: cannot read its saved config: {e}") from None

    def has_fifo(self):
        try:
            os.stat("exec.fifo", dir_fd=self.dirfd)
            return True
        except FileNotFoundError:
            return False

    # -- status -----------------------------------------------------------------
    @property
    def pid(self):
        return self.state.get("pid", 0)

    def alive(self):
        """The init still runs: the same pid *and* the same start time."""
        pid, started = self.state.get("pid"), self.state.get("startTime")
        if type(pid) is not int or pid <= 0 or type(started) is not int:
            return False
        return process_start_time(pid) == started

    def status(self, cgroup=None, locked=False):
        """The status from the live system; ``cgroup`` (a manager) to tell paused;
        ``locked`` when the caller holds the container's lock."""
        stored = self.state.get("status")
        if stored == CREATING:
            # A create still holds the lock, or it died half way (then: stopped, so
            # that delete --force cleans up).
            return CREATING if not locked and _locked_elsewhere(self.dirfd) else STOPPED
        if not self.alive():
            return STOPPED
        if cgroup is not None and cgroup.frozen():
            return PAUSED
        if self.has_fifo() and self._init_waits():
            return CREATED
        return RUNNING

    def _init_waits(self):
        """Whether the init still waits for start: it is the exec helper (or the
        runtime's Python running startContainer hooks).  A start killed after the
        helper went on but before it unlinked exec.fifo leaves the fifo behind a
        running program."""
        exe = f"/proc/{self.state['pid']}/exe"
        try:
            # stat, then readlink: an exec of the helper between the two reads as
            # the helper, never as something else
            theirs = os.stat(exe)
            if os.readlink(exe).startswith("/memfd:runtime-"):
                return True
            mine = os.stat(sys.executable)
        except OSError:
            return True  # not ours to inspect (rootless, non-dumpable): trust the fifo
        # the runtime's interpreter (seen through a read-only view of it)
        return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)

    def oci_state(self, status):
        """The state as runtime.md defines it (plus runc's rootfs, created, owner)."""
        st = self.state
        pid = st.get("pid")
        out = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": pid if status != STOPPED and type(pid) is int else 0,
            "status": status,
            "bundle": _text(st.get("bundle")),
            "rootfs": _text(st.get("rootfs")),
            "created": _text(st.get("created")),
            "owner": _text(st.get("owner")),
        }
        annotations = st.get("annotations")
        if annotations and isinstance(annotations, dict):
            out["annotations"] = annotations
        return out

    # -- lifetime ---------------------------------------------------------------
    def remove(self):
        """Remove the state directory (the lock goes with the fd)."""
        try:
            for name in os.listdir(self.dirfd):
                try:
                    os.unlink(name, dir_fd=self.dirfd)
                except IsADirectoryError:  # only a damaged entry has directories
                    import shutil

                    shutil.rmtree(name, dir_fd=self.dirfd)
            os.rmdir(self.dir)
        except OSError as e:
            raise Error(f"cannot remove state directory {self.dir}: "
                        f"{os.strerror(e.errno).lower()}") from None

    def close(self):
        if self.dirfd >= 0:
            os.close(self.dirfd)
            self.dirfd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _text(value):
    """A state field as text, whatever a damaged state file holds."""
    return value if isinstance(value, str) else ""


def write_atomic(name, text, mode=0o600, dir_fd=None):
    """Write a file whole or not at all: a new temporary file beside it, renamed over
    it.  The temporary name is unpredictable and made with O_EXCL | O_NOFOLLOW, so
    in a directory others can write, a file or symlink planted there is never
    written through; the rename replaces a symlink at ``name`` itself."""
    base, leaf = os.path.split(name)
    for _ in range(16):
        tmp = os.path.join(base, f".{leaf}.{os.urandom(6).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         mode, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary name", name)
    try:
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def _locked_elsewhere(dirfd):
    """True if another process holds the lock on the directory."""
    other = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(other)


class Store:
    def __init__(self, root=DEFAULT_ROOT):
        self.root = os.path.abspath(root)

    def _ensure_root(self):
        try:
            os.makedirs(self.root, 0o711, exist_ok=True)
        except OSError as e:
            raise Error(f"cannot create state root {self.root}: {os.strerror(e.errno).lower()}")

    def create(self, cid):
        """Reserve ``cid`` (exactly one concurrent create wins) and lock it."""
        check_id(cid)
        self._ensure_root()
        path = os.path.join(self.root, cid)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise Exists(cid) from None
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return Container(self.root, cid, fd)

    def open(self, cid, lock=True, wait=True):
        """Open an existing container; ``lock`` takes the exclusive lock (waiting for a
        running command on the same id unless ``wait`` is false)."""
        check_id(cid)
        path = os.path.join(self.root, cid)
        while True:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError):
                # (not a directory: a stray file or dangling link, not a container)
                raise NotFound(cid) from None
            if lock:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    os.close(fd)
                    raise Error(f"container {cid} is busy: another command holds its lock")
                # A delete that held the lock before us may have removed it.
                if os.fstat(fd).st_nlink == 0:
                    os.close(fd)
                    continue
            c = Container(self.root, cid, fd)
            try:
                c.state = _read_state(fd, cid)
            except (NotFound, Malformed) as e:
                if lock:
                    # No usable state.json: a create that died before writing it, or
                    # a damaged file.  The caller (delete --force) cleans up.
                    c.state = {"id": cid, "status": STOPPED, "broken": str(e)}
                    return c
                c.close()
                raise
            except BaseException:
                c.close()
                raise
            return c

    def remove_stray(self, cid):
        """Remove a non-directory entry named ``cid`` under the root (delete --force)."""
        path = os.path.join(self.root, cid)
        try:
            if not os.path.isdir(path) or os.path.islink(path):
                os.unlink(path)
                return True
        except (FileNotFoundError, IsADirectoryError):
            pass  # gone, or a directory now: a concurrent create has reserved the id
        return False

    def ids(self):
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.startswith("."))


class Malformed(Error):
    """state.json exists but cannot be used."""


# state.json keys and the types a usable one has
_TYPES = {"pid": int, "startTime": int, "status": str, "bundle": str, "cgroup": dict}


def _read_state(dirfd, cid):
    try:
        with open(os.open("state.json", os.O_RDONLY | os.O_CLOEXEC, dir_fd=dirfd), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise NotFound(cid) from None
    except OSError as e:  # e.g. state.json is a directory
        raise Malformed(f"container {cid}: cannot read its state file: "
                        f"{os.strerror(e.errno).lower()}") from None
    try:
        state = jsonfast.loads(data)
        if not isinstance(state, dict):
            raise ValueError("not an object")
        for key, kind in _TYPES.items():
            if key in state and state[key] is not None and type(state[key]) is not kind:
                raise ValueError(f"{key} is not {'an object' if kind is dict else 'a ' + kind.__name__}")
    except ValueError as e:
        raise Malformed(f"container {cid}: malformed state file: {e}") from None
    return state


def errno_name(err):
    return errno.errorcode.get(err, str(err))
