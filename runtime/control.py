"""Operations on a live container's cgroup: pause, resume, update, ps, events."""

import time

from . import jsonfast
from . import state as st
from .container import _cgroup_of, store
from .errors import Error, StateError, SysError


def _open(opts, cid, lock=True):
    c = store(opts).open(cid, lock=lock)
    cgroup = _cgroup_of(c)
    if cgroup is None:
        c.close()
        raise Error(f"container {cid} has no cgroup")
    return c, cgroup


def pause(opts, cid):
    c, cgroup = _open(opts, cid)
    with c:
        if c.status(cgroup, locked=True) not in (st.RUNNING, st.CREATED):
            raise StateError("container not running")
        cgroup.freeze()


def resume(opts, cid):
    c, cgroup = _open(opts, cid)
    with c:
        if c.status(cgroup, locked=True) != st.PAUSED:
            raise StateError("container not paused")
        cgroup.thaw()


def pids(opts, cid):
    c, cgroup = _open(opts, cid, lock=False)
    with c:
        if c.status(cgroup) == st.STOPPED:
            raise StateError("container not running")
        return cgroup.pids()


# update's flags -> (resources section, key, parser)
_UPDATE_FLAGS = {
    "blkio-weight": ("blockIO", "weight", int),
    "cpu-period": ("cpu", "period", int),
    "cpu-quota": ("cpu", "quota", int),
    "cpu-share": ("cpu", "shares", int),
    "cpu-rt-period": ("cpu", "realtimePeriod", int),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", int),
    "cpuset-cpus": ("cpu", "cpus", str),
    "cpuset-mems": ("cpu", "mems", str),
    "memory": ("memory", "limit", None),
    "memory-reservation": ("memory", "reservation", None),
    "memory-swap": ("memory", "swap", None),
    "pids-limit": ("pids", "limit", int),
}


def _bytes(text):
    """Sizes as runc's update takes them: bytes, or with a k/m/g suffix; -1 is unlimited."""
    t = text.strip().lower()
    mult = 1
    for suffix, m in (("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30), ("k", 1 << 10),
                      ("m", 1 << 20), ("g", 1 << 30), ("b", 1)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], m
            break
    return int(t) * mult


def resources_from_flags(flags):
    """LinuxResources from ``--resources FILE|-`` (which wins, as in runc) or from
    the individual flags."""
    path = flags.get("resources")
    if path:
        try:
            if path == "-":
                import sys

                data = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as f:
                    data = f.read()
        except OSError as e:
            raise SysError("read resources", e.errno, path) from None
        try:
            res = jsonfast.loads(data)
        except ValueError as e:
            raise Error(f"resources: invalid JSON: {e}") from None
        if not isinstance(res, dict):
            raise Error("resources: not a JSON object")
        return res
    res = {}
    for flag, (section, key, parse) in _UPDATE_FLAGS.items():
        value = flags.get(flag)
        if value is None:
            continue
        try:
            res.setdefault(section, {})[key] = (parse or _bytes)(value)
        except ValueError:
            raise Error(f"invalid value for --{flag}: {value!r}") from None
    for flag in ("l3-cache-schema", "mem-bw-schema"):
        if flags.get(flag) is not None:
            raise Error(f"--{flag}: Intel RDT is not supported by this runtime")
    return res


def update(opts, cid, flags):
    from . import schema

    resources = resources_from_flags(flags)
    failure = schema.check(resources, "config-linux.json#/$defs/Resources", strict_int=True)
    if failure is not None:
        path = schema.path_str(failure.path)
        raise Error(f"resources: {path + ': ' if path else ''}{failure.message}")
    c, cgroup = _open(opts, cid)
    with c:
        if c.status(cgroup, locked=True) == st.STOPPED:
            raise StateError("container not running")
        cgroup.update(resources)
        # Keep the saved config in step, so that `exec` and later updates see it.
        config = c.config()
        saved = config.setdefault("linux", {}).setdefault("resources", {})
        for section, values in resources.items():
            if isinstance(values, dict) and isinstance(saved.get(section), dict):
                saved[section].update(values)
            else:
                saved[section] = values
        c.save_config(config)


def parse_duration(text):
    """Go's time.ParseDuration for the units runc users write: 5s, 100ms, 1m30s."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    total, num, i = 0.0, "", 0
    t = text.strip()
    while i < len(t):
        ch = t[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = t[i:i + 2] if t[i:i + 2] in units else ch
        if unit not in units or not num:
            raise Error(f"invalid duration {text!r}")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num or total <= 0:
        raise Error(f"invalid duration {text!r}")
    return total


def events(opts, cid, interval, stats_only, out):
    """runc's event stream: {"type": "stats"|"oom", "id", "data"} JSON lines, until
    the container stops."""
    c, cgroup = _open(opts, cid, lock=False)
    with c:
        if c.status(cgroup) == st.STOPPED:
            raise StateError(f"container with id {cid} is not running")
        if stats_only:
            out(jsonfast.dumps({"type": "stats", "id": cid, "data": cgroup.stats()}) + "\n")
            return
        period = parse_duration(interval)
        notifier = cgroup.oom_events()
        try:
            next_stats = time.monotonic()
            while c.alive():
                now = time.monotonic()
                if now >= next_stats:
                    out(jsonfast.dumps({"type": "stats", "id": cid, "data": cgroup.stats()}) + "\n")
                    next_stats = now + period
                # Wake at least every second to notice the container's end.
                count = notifier.wait(min(next_stats - now, 1.0))
                if count:
                    out(jsonfast.dumps({"type": "oom", "id": cid}) + "\n")
                elif count == 0:
                    return
        finally:
            notifier.close()
