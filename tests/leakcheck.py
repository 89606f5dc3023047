"""A reusable leak checker: what a test (or one runtime invocation) left on the host.

    checker = LeakChecker(roots=[state_root], cgroup_prefixes=["/my-prefix"])
    before = checker.snapshot()
    ...                                   # run containers
    checker.assert_clean(before)          # AssertionError with a readable diff

or, as a context manager, ``with checker.watch(): ...``.

What is compared (only what is *new* counts: a leak is something present after and
absent before):

mounts     /proc/self/mountinfo of the checking process, by mount id (optionally
           only mount points under ``mount_scope``, minus ``mount_ignore``)
cgroups    directories under each prefix of ``cgroup_prefixes`` (a string prefix
           of the path below the hierarchy's mount, e.g. "/runtime-test-1234" also
           matches "/runtime-test-1234x"), in every v1 hierarchy and cgroup2 mount
state      files and directories under each ``roots`` (``--root`` of the runtime)
processes  live (non-zombie) processes that are (a) in a cgroup under a prefix,
           (b) descendants of the checking process, or (c) carry the tag
           ``RT_LEAKCHECK_TAG=<tag>`` in their environment; the tag is put in the
           checking process's environment by ``install_tag()`` so that every runtime
           it starts, and every stage of every container the runtime forks, inherits
           it: an orphan re-parented to pid 1 is still found.  Containers get the
           tag through ``process.env`` (``tag_env()``) to be found after exec.
           Zombie children of the checking process are reported too (not reaped).
fds        open file descriptors of the checking process (number -> target)

``check()`` polls until clean or ``timeout`` (exiting processes need a moment to
leave), ``cleanup()`` removes what a failed check found (kills only the processes
it identified, unmounts only inside ``mount_scope`` or ``owned``), so one failing test does not
poison the next.
"""

import contextlib
import errno
import os
import signal
import time
import uuid

CGROUP_ROOT = "/sys/fs/cgroup"
TAG_VAR = "RT_LEAKCHECK_TAG"

_tag = None


def install_tag(tag=None):
    """Put ``RT_LEAKCHECK_TAG`` in this process's environment (idempotent); return
    the tag.  Every process started from now on inherits it."""
    global _tag
    if _tag is None:
        _tag = tag or os.environ.get(TAG_VAR) or f"lc-{uuid.uuid4().hex[:12]}"
        os.environ[TAG_VAR] = _tag
    return _tag


def tag_env():
    """The ``NAME=value`` entry to add to a container's ``process.env``."""
    return f"{TAG_VAR}={install_tag()}"


# -- probes ---------------------------------------------------------------------------
def _read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def mountinfo(pid="self"):
    """{mount id: (mount point, fstype, source)} of a mount namespace."""
    out = {}
    for line in _read(f"/proc/{pid}/mountinfo").splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        out[int(fields[0])] = (_unescape(fields[4]), fields[sep + 1], fields[sep + 2])
    return out


def _unescape(text):
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def cgroup_mounts():
    """Mount points of the cgroup hierarchies (v1 and cgroup2), deduplicated by
    the directory they show (co-mounted controllers are listed once)."""
    seen = {}
    for mid, (mnt, fstype, _) in mountinfo().items():
        if fstype in ("cgroup", "cgroup2") and mnt.startswith(CGROUP_ROOT):
            try:
                key = os.stat(mnt).st_ino, os.stat(mnt).st_dev
            except OSError:
                continue
            seen.setdefault(key, mnt)
    return sorted(seen.values())


def cgroup_dirs(prefixes, mounts=None):
    """Every cgroup directory whose path below its hierarchy starts with a prefix."""
    found = set()
    for mnt in mounts if mounts is not None else cgroup_mounts():
        for prefix in prefixes:
            head, _, partial = prefix.strip("/").rpartition("/")
            base = os.path.join(mnt, head) if head else mnt
            try:
                entries = list(os.scandir(base))
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(partial) and entry.is_dir(follow_symlinks=False):
                    found.update(_walk_dirs(entry.path))
    return found


def _walk_dirs(top):
    out = [top]
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                out.append(entry.path)
                stack.append(entry.path)
    return out


def state_entries(roots):
    out = set()
    for root in roots:
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                out.add(os.path.join(dirpath, name))
    return out


class Proc:
    """What the checker knows of a process."""

    __slots__ = ("pid", "ppid", "state", "start", "comm", "cmdline", "cgroup", "why")

    def __init__(self, pid, ppid, state, start, comm):
        self.pid, self.ppid, self.state, self.start, self.comm = pid, ppid, state, start, comm
        self.cmdline = ""
        self.cgroup = ""
        self.why = []

    @property
    def key(self):
        return self.pid, self.start

    def describe(self):
        return (f"pid {self.pid} (ppid {self.ppid}, {self.state}) {self.cmdline or self.comm!r}"
                f" cgroup {self.cgroup or '?'} [{', '.join(self.why)}]")


def _stat(pid):
    data = _read(f"/proc/{pid}/stat", "rb")
    close = data.rfind(b")")
    comm = data[data.find(b"(") + 1:close].decode(errors="replace")
    fields = data[close + 2:].split()
    return fields[0].decode(), int(fields[1]), int(fields[19]), comm


def processes(prefixes, tag, ancestor):
    """{(pid, start): Proc} of the processes the checker owns (see module doc)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            state, ppid, start, comm = _stat(pid)
        except (OSError, IndexError, ValueError):
            continue
        table[pid] = Proc(pid, ppid, state, start, comm)
    out = {}
    for pid, p in table.items():
        if pid == ancestor:
            continue
        # (b) descendant of the checking process
        q, hops = p, 0
        while q is not None and q.ppid > 1 and hops < 64:
            if q.ppid == ancestor:
                p.why.append("descendant of the test" if hops else "child of the test")
                break
            q = table.get(q.ppid)
            hops += 1
        if p.state in ("Z", "X"):
            if p.ppid == ancestor:
                p.why = ["zombie child of the test, not reaped"]
                out[p.key] = p
            continue
        try:
            cg = _read(f"/proc/{pid}/cgroup")
        except OSError:
            continue
        paths = [line.split(":", 2)[2] for line in cg.splitlines() if line.count(":") >= 2]
        mine = [path for path in paths if any(path.startswith(pre) for pre in prefixes)]
        if mine:
            p.why.append("in a test cgroup")
        p.cgroup = (mine or [x for x in paths if x not in ("/", "")] or ["/"])[0]
        if tag:
            try:
                env = _read(f"/proc/{pid}/environ", "rb")
            except OSError:
                env = b""
            if f"{TAG_VAR}={tag}".encode() in env.split(b"\0"):
                p.why.append("tagged" + (" orphan" if p.ppid == 1 else ""))
        if p.why:
            try:
                p.cmdline = _read(f"/proc/{pid}/cmdline", "rb").replace(b"\0", b" ").decode(
                    errors="replace").strip()[:120]
            except OSError:
                pass
            out[p.key] = p
    return out


def open_fds():
    """{fd: target} of the checking process."""
    out = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for name in names:
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the fd of the listing itself, closed meanwhile
    return out


# -- snapshot and diff ----------------------------------------------------------------
class Snapshot:
    def __init__(self, mounts, cgroups, state, procs, fds):
        self.mounts, self.cgroups, self.state, self.procs, self.fds = (
            mounts, cgroups, state, procs, fds)
        self.time = time.monotonic()


class Leaks:
    """New things since a snapshot; false when there are none."""

    def __init__(self):
        self.mounts = []     # (id, mountpoint, fstype, source)
        self.cgroups = []    # paths
        self.state = []      # paths
        self.procs = []      # Proc
        self.fds = []        # (fd, target)

    def __bool__(self):
        return bool(self.mounts or self.cgroups or self.state or self.procs or self.fds)

    def counts(self):
        return {"mounts": len(self.mounts), "cgroups": len(self.cgroups),
                "state": len(self.state), "processes": len(self.procs), "fds": len(self.fds)}

    def __str__(self):
        if not self:
            return "no leaks"
        parts = []

        def section(title, items, show, limit=15):
            if items:
                lines = [f"  {show(x)}" for x in items[:limit]]
                if len(items) > limit:
                    lines.append(f"  ... and {len(items) - limit} more")
                parts.append(f"{title} ({len(items)}):\n" + "\n".join(lines))

        section("processes left", self.procs, Proc.describe)
        section("cgroups left", self.cgroups, str)
        section("state entries left", self.state, str)
        section("mounts left", self.mounts, lambda m: f"#{m[0]} {m[2]} {m[3]} on {m[1]}")
        section("fds left open in the test process", self.fds, lambda f: f"fd {f[0]} -> {f[1]}")
        return "leak check failed:\n" + "\n".join(parts)


class LeakChecker:
    """See the module docstring.  ``roots``: state roots; ``cgroup_prefixes``:
    cgroup path prefixes ("/x"); ``mount_scope``: only mount points under these
    paths count (None: all); ``mount_ignore``: mount points under these never count;
    ``fds``: check this process's fds; ``tag``: the environment tag (default: the
    installed one, if any); ``state_ignore``: basenames under the roots that are
    caches, not leaks; ``owned``: directories whose mounts ``cleanup()`` may unmount
    (besides ``mount_scope``); ``mount_filter(mountpoint)``: false for mount points
    that never count (e.g. other users' directories on a shared machine);
    ``cgroup_ignore``: cgroup paths (below the hierarchy's mount, exact) that never
    count, e.g. a prefix directory that containers share and that runc, too, leaves."""

    def __init__(self, roots=(), cgroup_prefixes=(), mount_scope=None, mount_ignore=(),
                 fds=True, tag=None, state_ignore=(".seccomp-cache",), owned=(),
                 mount_filter=None, cgroup_ignore=()):
        self.roots = [os.path.abspath(str(r)) for r in roots]
        self.prefixes = ["/" + p.strip("/") for p in cgroup_prefixes]
        self.mount_scope = None if mount_scope is None else [str(p).rstrip("/") for p in mount_scope]
        self.mount_ignore = [str(p).rstrip("/") for p in mount_ignore]
        self.check_fds = fds
        self.tag = tag if tag is not None else (_tag or os.environ.get(TAG_VAR))
        self.state_ignore = set(state_ignore)
        self.mount_filter = mount_filter
        self.cgroup_ignore = {"/" + p.strip("/") for p in cgroup_ignore}
        self.owned = [str(p).rstrip("/") for p in owned] + (self.mount_scope or [])
        self.pid = os.getpid()
        self._cg_mounts = cgroup_mounts()

    # -- snapshots -----------------------------------------------------------------
    def snapshot(self):
        return Snapshot(self._mounts(), self._cgroups(),
                        self._state(), processes(self.prefixes, self.tag, self.pid),
                        open_fds() if self.check_fds else {})

    def _cgroups(self):
        found = cgroup_dirs(self.prefixes, self._cg_mounts)
        if self.cgroup_ignore:
            found = {p for p in found
                     if not any(p == m.rstrip("/") + i for m in self._cg_mounts
                                for i in self.cgroup_ignore)}
        return found

    def _mounts(self):
        out = {}
        for mid, (mnt, fstype, source) in mountinfo().items():
            if self.mount_scope is not None and not any(_under(mnt, s) for s in self.mount_scope):
                continue
            if any(_under(mnt, s) for s in self.mount_ignore):
                continue
            if self.mount_filter is not None and not self.mount_filter(mnt):
                continue
            out[mid] = (mnt, fstype, source)
        return out

    def _state(self):
        return {p for p in state_entries(self.roots)
                if not any(part in self.state_ignore for part in p.split("/"))}

    def diff(self, before, after=None):
        after = after or self.snapshot()
        leaks = Leaks()
        leaks.mounts = sorted((mid,) + m for mid, m in after.mounts.items()
                              if mid not in before.mounts)
        leaks.cgroups = sorted(after.cgroups - before.cgroups)
        leaks.state = sorted(after.state - before.state)
        leaks.procs = sorted((p for k, p in after.procs.items() if k not in before.procs),
                             key=lambda p: p.pid)
        leaks.fds = sorted((fd, t) for fd, t in after.fds.items() if before.fds.get(fd) != t)
        return leaks

    def check(self, before, timeout=3.0, interval=0.02):
        """The leaks left after waiting up to ``timeout`` for the host to settle."""
        deadline = time.monotonic() + timeout
        while True:
            leaks = self.diff(before)
            if not leaks or time.monotonic() >= deadline:
                return leaks
            time.sleep(interval)
            interval = min(interval * 1.5, 0.2)

    def assert_clean(self, before, timeout=3.0, what="", cleanup=True):
        leaks = self.check(before, timeout)
        if leaks:
            message = (f"{what}: " if what else "") + str(leaks)
            if cleanup:
                self.cleanup(leaks)
            raise AssertionError(message)

    @contextlib.contextmanager
    def watch(self, timeout=3.0, what=""):
        before = self.snapshot()
        yield before
        self.assert_clean(before, timeout, what)

    # -- cleanup -------------------------------------------------------------------
    def cleanup(self, leaks):
        """Remove what ``leaks`` lists, as far as it is ours: kill its processes
        (thawing frozen cgroups), rmdir its cgroups, unmount mounts inside the
        scope, remove its state entries."""
        for p in leaks.procs:
            if p.state in ("Z", "X"):
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(p.pid, os.WNOHANG)
                continue
            try:
                if _stat(p.pid)[2] != p.start:
                    continue  # the pid was reused: not ours any more
                os.kill(p.pid, signal.SIGKILL)
            except (OSError, IndexError, ValueError):
                pass
        for path in leaks.cgroups:
            with contextlib.suppress(OSError):
                _write(os.path.join(path, "freezer.state"), "THAWED")
        for path in sorted(leaks.cgroups, key=lambda p: p.count("/"), reverse=True):
            _rmdir_retry(path)
        mine = [m for m in leaks.mounts if any(_under(m[1], top) for top in self.owned)]
        if mine:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            for mid, mnt, _, _ in sorted(mine, key=lambda m: -m[1].count("/")):
                libc.umount2(mnt.encode(), 2)  # MNT_DETACH
        for path in sorted(leaks.state, key=lambda p: p.count("/"), reverse=True):
            with contextlib.suppress(OSError):
                if os.path.isdir(path) and not os.path.islink(path):
                    os.rmdir(path)
                else:
                    os.unlink(path)
        for fd, _ in leaks.fds:
            pass  # fds are the test's own: reported, not closed behind its back


def _under(path, top):
    return path == top or path.startswith(top + "/") or top == ""


def _write(path, text):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _rmdir_retry(path, timeout=2.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.ENOTEMPTY) or time.monotonic() > deadline:
                return
        time.sleep(0.02)
