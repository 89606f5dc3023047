"""process.capabilities: names to bits, and applying the five sets.

As runc does, unknown names, or names this kernel does not have, are ignored with
a warning; ambient capabilities that the kernel refuses to raise (not in both the
permitted and inheritable sets) are skipped with a warning too.
"""

from . import linux
from .errors import SysError

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
BITS = {name: bit for bit, name in enumerate(NAMES)}
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

_last = None


def _known(cap):
    try:
        linux.prctl(linux.PR_CAPBSET_READ, cap)
    except SysError:
        return False     # EINVAL: beyond what this kernel knows
    return True


def last_cap():
    """The highest capability this kernel knows, asked of the kernel itself
    (PR_CAPBSET_READ), not read from /proc/sys/kernel/cap_last_cap, a file the
    container's init reads after its mounts are made."""
    global _last
    if _last is None:
        top = min(linux.CAP_LAST_CAP, 63)
        while top < 63 and _known(top + 1):
            top += 1
        while top > 0 and not _known(top):
            top -= 1
        _last = top
    return _last


def to_mask(names, unknown, available=None):
    """Bit mask of ``names``; names this kernel lacks, or not in the ``available``
    mask, are appended to ``unknown``."""
    top = last_cap()
    mask = 0
    for name in names or ():
        bit = BITS.get(name.upper())
        if bit is None or bit > top or (available is not None and not available >> bit & 1):
            if name not in unknown:
                unknown.append(name)
            continue
        mask |= 1 << bit
    return mask


def to_names(mask):
    return [NAMES[b] for b in range(len(NAMES)) if mask >> b & 1]


def masks(caps, available=None):
    """{set: mask} for a process.capabilities object, plus the names left out:
    unknown to this kernel, or not ``available`` to the runtime to give."""
    unknown = []
    out = {s: to_mask((caps or {}).get(s), unknown, available) for s in SETS}
    return out, unknown


def drop_bounding(bounding):
    for bit in range(last_cap() + 1):
        if not bounding >> bit & 1:
            linux.prctl(linux.PR_CAPBSET_DROP, bit, what=f"drop {_name(bit)} from bounding set")


def apply(sets, debug=None):
    """Set effective, permitted and inheritable, then raise the ambient ones."""
    linux.capset(sets["effective"], sets["permitted"], sets["inheritable"])
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    refused = []
    for bit in range(last_cap() + 1):
        if sets["ambient"] >> bit & 1:
            try:
                linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, bit, 0, 0)
            except SysError:
                refused.append(_name(bit))
    if refused and debug:
        debug("ambient capabilities not raised (they must be permitted and inheritable): "
             + ", ".join(refused))


def _name(bit):
    return NAMES[bit] if bit < len(NAMES) else f"CAP_{bit}"
