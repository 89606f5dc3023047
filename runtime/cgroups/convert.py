"""v1-style linux.resources values to cgroup v2 file values (crun's documented
conversions, which runc shares)."""

IO_MAX_KEYS = (
    ("throttleReadBpsDevice", "rbps"),
    ("throttleWriteBpsDevice", "wbps"),
    ("throttleReadIOPSDevice", "riops"),
    ("throttleWriteIOPSDevice", "wiops"),
)


def cpu_weight(shares):
    """cpu.shares [2, 262144] to cpu.weight [1, 10000]: 1024 -> 39."""
    if not shares:
        return 0
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def cpu_max(quota, period):
    """cpu.cfs_quota_us / cpu.cfs_period_us to ``cpu.max``: "QUOTA PERIOD", with
    "max" for no quota and the kernel's default period when none is given."""
    q = str(quota) if quota and quota > 0 else "max"
    return f"{q} {period or 100000}"


def io_weight(weight):
    """blkio.weight [10, 1000] to io.weight [1, 10000]: 500 -> 5000."""
    if not weight:
        return 0
    return 1 + (max(weight, 10) - 10) * 9999 // 990


def memory_swap(swap, limit):
    """The OCI memory+swap limit to memory.swap.max (swap alone); None: leave it.
    -1 means unlimited; an unlimited memory with no swap given unlimits swap too."""
    if limit == -1 and not swap:
        return -1
    if swap == -1:
        return -1
    if not swap:
        return None
    if not limit or limit == -1:
        raise ValueError("unable to set swap limit without memory limit")
    if limit < 0:
        raise ValueError(f"invalid memory value: {limit}")
    if swap < limit:
        raise ValueError("memory+swap limit should be >= memory limit")
    return swap - limit


def max_str(value):
    return "max" if value == -1 else str(value)


def io_max_line(td, key):
    """A throttle entry as an io.max line; a rate of 0 lifts the limit, as writing
    0 to the v1 throttle files does."""
    rate = td.get("rate") or 0
    return f"{td['major']}:{td['minor']} {key}={rate if rate else 'max'}"


def uses_domain_controllers(res):
    mem = res.get("memory") or {}
    cpu = res.get("cpu") or {}
    blk = res.get("blockIO") or {}
    return bool(mem.get("limit") or mem.get("reservation") or mem.get("swap")
                or cpu.get("shares") or cpu.get("quota") or cpu.get("period")
                or blk.get("weight") or blk.get("weightDevice")
                or any(blk.get(k) for k, _ in IO_MAX_KEYS)
                or res.get("hugepageLimits"))
