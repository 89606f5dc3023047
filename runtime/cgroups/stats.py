"""``events --stats`` data and OOM notification.

The stats dict is runc's events "data" object: the same keys in the same order,
zero values left out where runc's JSON tags say ``omitempty``.
"""

import os
import select
import time

from . import CgroupError
from . import fs

_MAX_U64 = (1 << 64) - 1
_NS_PER_TICK = 10**9 // os.sysconf("SC_CLK_TCK")


def _put(d, key, value):
    """Set unless zero/empty (Go's omitempty)."""
    if value:
        d[key] = value


def _int(path, name, default=0):
    try:
        text = fs.read(path, name).strip()
    except (OSError, ValueError):
        return default
    if text == "max":
        return _MAX_U64
    try:
        return int(text)
    except ValueError:
        return default


def _entry(limit, usage, peak, failcnt):
    out = {"limit": limit}
    _put(out, "usage", usage)
    _put(out, "max", peak)
    out["failcnt"] = failcnt
    return out


def _cpu(total=0, percpu=None, percpu_kernel=None, percpu_user=None, kernel=0, user=0,
         periods=0, throttled=0, throttled_time=0):
    usage = {}
    _put(usage, "total", total)
    _put(usage, "percpu", percpu)
    _put(usage, "percpu_kernel", percpu_kernel)
    _put(usage, "percpu_user", percpu_user)
    usage["kernel"] = kernel
    usage["user"] = user
    throttling = {}
    _put(throttling, "periods", periods)
    _put(throttling, "throttledPeriods", throttled)
    _put(throttling, "throttledTime", throttled_time)
    return {"usage": usage, "throttling": throttling}


def _cpuset(cpus=None, mems=None, values=None):
    values = values or {}
    out = {}
    _put(out, "cpus", cpus)
    out["cpu_exclusive"] = values.get("cpu_exclusive", 0)
    _put(out, "mems", mems)
    for key in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                "memory_spread_slab", "memory_pressure", "sched_load_balance",
                "sched_relax_domain_level"):
        out[key] = values.get(key, 0)
    return out


def parse_list(text):
    """A cpu/mem list ("0-3,7") as a list of ints."""
    out = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _blkio_entries(path, name):
    """Lines ``MAJ:MIN Op VALUE`` (or ``MAJ:MIN VALUE``) as runc's BlkioEntry."""
    out = []
    try:
        text = fs.read(path, name)
    except OSError:
        return out
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if len(fields) < 3:
            continue
        entry = {}
        _put(entry, "major", int(fields[0]))
        _put(entry, "minor", int(fields[1]))
        if len(fields) == 4:
            _put(entry, "op", fields[2])
        _put(entry, "value", int(fields[-1]))
        out.append(entry)
    return out


BLKIO_KEYS = (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
              ("ioServicedRecursive", "io_serviced_recursive"),
              ("ioQueueRecursive", "io_queued_recursive"),
              ("ioServiceTimeRecursive", "io_service_time_recursive"),
              ("ioWaitTimeRecursive", "io_wait_time_recursive"),
              ("ioMergedRecursive", "io_merged_recursive"),
              ("ioTimeRecursive", "time_recursive"),
              ("sectorsRecursive", "sectors_recursive"))


def _stats(cpu, cpuset, memory, pids, blkio, hugetlb):
    # Go writes map keys sorted
    if "raw" in memory:
        memory["raw"] = dict(sorted(memory["raw"].items()))
    hugetlb = dict(sorted(hugetlb.items()))
    return {"cpu": cpu, "cpuset": cpuset, "memory": memory, "pids": pids, "blkio": blkio,
            "hugetlb": hugetlb, "intel_rdt": {}, "network_interfaces": None}


def v1_stats(paths):
    # cpu + cpuacct
    cpu = {}
    p = paths.get("cpu")
    st = fs.read_keyed(p, "cpu.stat") if p else {}
    a = paths.get("cpuacct")
    percpu_kernel = percpu_user = None
    kernel = user = 0
    if a:
        try:
            rows = fs.read(a, "cpuacct.usage_all").splitlines()[1:]
            percpu_user = [int(r.split()[1]) for r in rows]
            percpu_kernel = [int(r.split()[2]) for r in rows]
        except (OSError, IndexError, ValueError):
            pass
        ticks = fs.read_keyed(a, "cpuacct.stat")
        user = ticks.get("user", 0) * _NS_PER_TICK
        kernel = ticks.get("system", 0) * _NS_PER_TICK
    try:
        percpu = [int(x) for x in fs.read(a, "cpuacct.usage_percpu").split()] if a else None
    except OSError:
        percpu = None
    cpu = _cpu(_int(a, "cpuacct.usage") if a else 0, percpu, percpu_kernel, percpu_user,
               kernel, user, st.get("nr_periods", 0), st.get("nr_throttled", 0),
               st.get("throttled_time", 0))
    # cpuset
    c = paths.get("cpuset")
    if c:
        values = {k: _int(c, "cpuset." + k) for k in (
            "cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate",
            "memory_spread_page", "memory_spread_slab", "memory_pressure",
            "sched_load_balance", "sched_relax_domain_level")}
        try:
            cpus = parse_list(fs.read(c, "cpuset.cpus"))
            mems = parse_list(fs.read(c, "cpuset.mems"))
        except OSError:
            cpus = mems = None
        cpuset = _cpuset(cpus, mems, values)
    else:
        cpuset = _cpuset()
    # memory
    memory = {}
    m = paths.get("memory")
    if m:
        raw = fs.read_keyed(m, "memory.stat")
        _put(memory, "cache", raw.get("cache", 0))
        for key, prefix in (("usage", "memory"), ("swap", "memory.memsw"),
                            ("kernel", "memory.kmem"), ("kernelTCP", "memory.kmem.tcp")):
            memory[key] = _entry(_int(m, prefix + ".limit_in_bytes"),
                                 _int(m, prefix + ".usage_in_bytes"),
                                 _int(m, prefix + ".max_usage_in_bytes"),
                                 _int(m, prefix + ".failcnt"))
        _put(memory, "raw", raw)
    # pids
    pids = {}
    p = paths.get("pids")
    if p:
        _put(pids, "current", _int(p, "pids.current"))
        limit = _int(p, "pids.max")
        _put(pids, "limit", 0 if limit == _MAX_U64 else limit)
    # blkio: CFQ files, else BFQ, else the throttle counters (as runc falls back)
    blkio = {}
    b = paths.get("blkio")
    if b:
        for prefix in ("blkio.", "blkio.bfq.", None):
            if prefix is None:
                _put(blkio, "ioServiceBytesRecursive",
                     _blkio_entries(b, "blkio.throttle.io_service_bytes_recursive"))
                _put(blkio, "ioServicedRecursive",
                     _blkio_entries(b, "blkio.throttle.io_serviced_recursive"))
            elif fs.exists(b, prefix + "io_service_bytes_recursive"):
                for key, name in BLKIO_KEYS:
                    _put(blkio, key, _blkio_entries(b, prefix + name))
                break
    # hugetlb: the v1 controller, or the hybrid cgroup2 directory
    hugetlb = {}
    h = paths.get("hugetlb")
    for size in fs.hugepage_sizes():
        if h:
            entry = {}
            _put(entry, "usage", _int(h, f"hugetlb.{size}.usage_in_bytes"))
            _put(entry, "max", _int(h, f"hugetlb.{size}.max_usage_in_bytes"))
            entry["failcnt"] = _int(h, f"hugetlb.{size}.failcnt")
            hugetlb[size] = entry
        elif paths.get("") and fs.exists(paths[""], f"hugetlb.{size}.current"):
            hugetlb[size] = _hugetlb_v2(paths[""], size)
    return _stats(cpu, cpuset, memory, pids, blkio, hugetlb)


def _hugetlb_v2(path, size):
    entry = {}
    _put(entry, "usage", _int(path, f"hugetlb.{size}.current"))
    entry["failcnt"] = fs.read_keyed(path, f"hugetlb.{size}.events").get("max", 0)
    return entry


def v2_stats(path):
    st = fs.read_keyed(path, "cpu.stat")
    cpu = _cpu(st.get("usage_usec", 0) * 1000, kernel=st.get("system_usec", 0) * 1000,
               user=st.get("user_usec", 0) * 1000, periods=st.get("nr_periods", 0),
               throttled=st.get("nr_throttled", 0),
               throttled_time=st.get("throttled_usec", 0) * 1000)
    cpuset = _cpuset()
    memory = {}
    if fs.exists(path, "memory.current"):
        raw = fs.read_keyed(path, "memory.stat")
        _put(memory, "cache", raw.get("file", 0))
        usage = _int(path, "memory.current")
        limit = _int(path, "memory.max")
        events = fs.read_keyed(path, "memory.events")
        memory["usage"] = _entry(limit, usage, _int(path, "memory.peak"), events.get("max", 0))
        swap_limit = _int(path, "memory.swap.max", _MAX_U64)
        if swap_limit != _MAX_U64 and limit != _MAX_U64:
            swap_limit += limit
        swap_events = fs.read_keyed(path, "memory.swap.events")
        memory["swap"] = _entry(swap_limit, _int(path, "memory.swap.current") + usage,
                                _int(path, "memory.swap.peak"), swap_events.get("max", 0))
        memory["kernel"] = _entry(0, 0, 0, 0)
        memory["kernelTCP"] = _entry(0, 0, 0, 0)
        _put(memory, "raw", raw)
    pids = {}
    if fs.exists(path, "pids.current"):
        _put(pids, "current", _int(path, "pids.current"))
        limit = _int(path, "pids.max")
        _put(pids, "limit", 0 if limit == _MAX_U64 else limit)
    blkio = {}
    served, bytes_ = [], []
    try:
        text = fs.read(path, "io.stat")
    except OSError:
        text = ""
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        major, _, minor = fields[0].partition(":")
        kv = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        for key, op, out in (("rbytes", "Read", bytes_), ("wbytes", "Write", bytes_),
                             ("rios", "Read", served), ("wios", "Write", served)):
            if key in kv:
                entry = {}
                _put(entry, "major", int(major))
                _put(entry, "minor", int(minor))
                entry["op"] = op
                _put(entry, "value", int(kv[key]))
                out.append(entry)
    _put(blkio, "ioServiceBytesRecursive", bytes_)
    _put(blkio, "ioServicedRecursive", served)
    hugetlb = {}
    for size in fs.hugepage_sizes():
        if fs.exists(path, f"hugetlb.{size}.current"):
            hugetlb[size] = _hugetlb_v2(path, size)
    return _stats(cpu, cpuset, memory, pids, blkio, hugetlb)


class OOMNotifierV1:
    """OOM notifications of a v1 memory cgroup through cgroup.event_control and an
    eventfd (which the kernel also signals when the cgroup is removed)."""

    def __init__(self, path):
        self.path = path
        self._efd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            self._ctl = os.open(path + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                fs.write(path, "cgroup.event_control", f"{self._efd} {self._ctl}")
            except fs.WriteFailed as e:
                os.close(self._ctl)
                raise CgroupError(f"cgroup: register OOM notification: {e}") from None
        except BaseException:
            os.close(self._efd)
            raise

    def fileno(self):
        return self._efd

    def wait(self, timeout=None):
        """OOM events since the last call (>= 1), 0 when the cgroup is gone, None
        when ``timeout`` seconds pass first."""
        poller = select.poll()
        poller.register(self._efd, select.POLLIN)
        if not poller.poll(None if timeout is None else int(timeout * 1000)):
            return None
        count = int.from_bytes(os.read(self._efd, 8), "little")
        if not os.path.exists(self.path + "/cgroup.event_control"):
            return 0
        return count

    def close(self):
        for fd in (self._efd, self._ctl):
            try:
                os.close(fd)
            except OSError:
                pass
        self._efd = self._ctl = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class OOMNotifierV2:
    """OOM kills of a v2 cgroup: memory.events is watched (poll(2) reports
    POLLPRI when it changes) and its oom_kill counter compared."""

    def __init__(self, path):
        self.path = path
        try:
            self._fd = os.open(path + "/memory.events", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CgroupError(f"cgroup: open {path}/memory.events: "
                              f"{os.strerror(e.errno).lower()}") from None
        self._last = self._count()

    def _count(self):
        try:
            text = os.pread(self._fd, 4096, 0).decode()
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def fileno(self):
        return self._fd

    def wait(self, timeout=None):
        """As OOMNotifierV1.wait."""
        poller = select.poll()
        poller.register(self._fd, select.POLLPRI | select.POLLERR)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = 1.0 if deadline is None else min(1.0, max(deadline - time.monotonic(), 0))
            poller.poll(int(step * 1000))
            if not os.path.isdir(self.path):
                return 0
            count = self._count()
            if count is None:
                return 0
            if count > self._last:
                new, self._last = count - self._last, count
                return new
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
