"""File-level helpers shared by the v1 and v2 drivers.

Control files are written with a single ``write(2)`` each (the kernel parses one
value per write) and read whole.  Failures surface as ``CgroupError`` lines naming
the file and, where the caller knows it, the config field.
"""

import errno
import os
import time

from . import CgroupError


class WriteFailed(OSError):
    """A control-file write failed; carries the file and value for the message."""

    def __init__(self, err, path, value):
        super().__init__(err, os.strerror(err), path)
        self.value = value

    def __str__(self):
        return f"write {self.value!r} to {self.filename}: {os.strerror(self.errno).lower()}"


def write(dirpath, name, value):
    path = dirpath + "/" + name
    data = value.encode() if isinstance(value, str) else str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise WriteFailed(e.errno, path, data.decode()) from None
    try:
        os.write(fd, data)
    except OSError as e:
        raise WriteFailed(e.errno, path, data.decode()) from None
    finally:
        os.close(fd)


def read(dirpath, name):
    with open(dirpath + "/" + name) as f:
        return f.read()


#: errnos of a file in a cgroup removed meanwhile: ENODEV once it is open
GONE = (errno.ENOENT, errno.ENODEV)


def read_int(dirpath, name):
    """A single-number file; "max" reads as -1."""
    text = read(dirpath, name).strip()
    return -1 if text == "max" else int(text)


def read_keyed(dirpath, name):
    """A flat keyed file (``key value`` lines) as {key: int}."""
    out = {}
    try:
        text = read(dirpath, name)
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def exists(dirpath, name):
    return os.path.exists(dirpath + "/" + name)


def missing_dirs(path, top="/"):
    """The directories of ``path`` that do not exist, outermost first, from below
    ``top`` (not included) down to ``path``."""
    top = top.rstrip("/")
    missing = []
    while path.startswith(top + "/") and not os.path.isdir(path):
        missing.append(path)
        path = path.rsplit("/", 1)[0]
    return missing[::-1]


def make_dirs(path, created):
    """mkdir -p, appending every directory made to ``created`` (outermost first).
    A parent removed meanwhile (the delete of another container under the same
    prefix) is made again."""
    for _ in range(10):
        try:
            for d in missing_dirs(path):
                try:
                    os.mkdir(d, 0o755)
                except FileExistsError:
                    continue
                created.append(d)
            return
        except FileNotFoundError:
            continue
        except OSError as e:
            raise CgroupError(f"cgroup: mkdir {d}: {os.strerror(e.errno).lower()}") from None
    raise CgroupError(f"cgroup: mkdir {path}: its parent keeps disappearing")


def add_pid(dirpath, pid):
    try:
        write(dirpath, "cgroup.procs", pid)
    except WriteFailed as e:
        raise CgroupError(f"cgroup: add pid {pid} to {dirpath}: "
                          f"{os.strerror(e.errno).lower()}") from None


def _rmdir_retry(path, deadline):
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError(f"cgroup: remove {path}: "
                                  f"{os.strerror(e.errno).lower()}") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def remove_tree(path, timeout=2.0):
    """rmdir ``path`` and the cgroups below it (made by the container, e.g. in
    its cgroup namespace), deepest first; EBUSY (tasks still exiting) is retried
    until ``timeout``.  Only directories: cgroupfs holds nothing else removable."""
    deadline = time.monotonic() + timeout
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path, timeout)
    _rmdir_retry(path, deadline)


def rmdir_if_empty(path):
    """rmdir that leaves a directory in use (EBUSY, ENOTEMPTY) or gone alone."""
    try:
        os.rmdir(path)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
            raise CgroupError(f"cgroup: remove {path}: {os.strerror(e.errno).lower()}") from None


def all_pids(path):
    """The pids in ``cgroup.procs`` of ``path`` and all cgroups below it."""
    pids = []
    try:
        with open(path + "/cgroup.procs") as f:
            pids.extend(int(x) for x in f.read().split())
    except OSError as e:
        if e.errno in GONE:
            return pids
        raise
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return pids
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            pids.extend(all_pids(entry.path))
    return pids


def signal_pids(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def wait_until(check, timeout, what):
    """Poll ``check()`` (true when done) with a short backoff."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not check():
        if time.monotonic() > deadline:
            raise CgroupError(f"cgroup: timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


PAGE_UNITS = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40, "PB": 1 << 50}


def hugepage_sizes(sysfs="/sys/kernel/mm/hugepages"):
    """The host's hugepage sizes as the cgroup file names spell them (2MB, 1GB)."""
    out = []
    try:
        names = os.listdir(sysfs)
    except FileNotFoundError:
        return out
    for name in names:
        if name.startswith("hugepages-") and name.endswith("kB"):
            out.append(page_size_name(int(name[10:-2]) * 1024))
    return out


def page_size_name(size):
    """Bytes to the kernel's hugetlb name: 2097152 -> "2MB", 65536 -> "64KB"."""
    unit = "B"
    for name in ("KB", "MB", "GB", "TB", "PB"):
        if size % 1024 or size < 1024:
            break
        size //= 1024
        unit = name
    return f"{size}{unit}"


def parse_page_size(text):
    """A spec pageSize ("2MB", "64KB", "1GB") in bytes, or None when malformed."""
    for unit, mult in PAGE_UNITS.items():
        if text.endswith(unit) and text[:-2].isdigit():
            return int(text[:-2]) * mult
    return None
