"""Device access rules: the v1 devices-controller semantics, and the cgroup v2
eBPF program that enforces the same result.

Rules are linux.resources.devices entries (``{"allow", "type", "major", "minor",
"access"}``).  They are replayed in order on a model of the v1 controller's state
(``DeviceState``): a default (allow or deny everything) and a set of exceptions
keyed by (type, major, minor) with their access letters, as the kernel keeps them.
A wildcard-type rule ("a") resets the default and drops every exception; any other
rule adds to or removes from the exceptions, depending on the default.

On v1 the state is reached from the cgroup's current ``devices.list`` by writing
only the differences (``transition``), so a running container never passes through
"deny everything".  On v2 ``program`` assembles a BPF_PROG_TYPE_CGROUP_DEVICE
program from the final state.
"""

import struct

from . import CgroupError

WILDCARD = -1
ACCESS = "rwm"


def normalize(rules, field="linux.resources.devices"):
    """Spec entries to (allow, type, major, minor, access) tuples, -1 = wildcard."""
    out = []
    for i, rule in enumerate(rules or ()):
        where = f"{field}[{i}]"
        typ = rule.get("type") or "a"
        if typ not in ("a", "b", "c"):
            raise CgroupError(f"{where}: invalid cgroup device type {typ!r}")
        access = rule.get("access")
        if not access:
            raise CgroupError(f"{where}: device access cannot be empty")
        if any(ch not in ACCESS for ch in access):
            raise CgroupError(f"{where}: invalid device access {access!r}")
        major = rule.get("major")
        minor = rule.get("minor")
        major = WILDCARD if major is None else int(major)
        minor = WILDCARD if minor is None else int(minor)
        out.append((bool(rule.get("allow")), typ, major, minor, _canon(access)))
    return out


def _canon(access):
    return "".join(ch for ch in ACCESS if ch in access)


def rule_string(typ, major, minor, access):
    """The devices.allow/deny line: ``c 1:3 rwm``, ``c *:* m``, ``a *:* rwm``."""
    maj = "*" if major == WILDCARD else str(major)
    mnr = "*" if minor == WILDCARD else str(minor)
    return f"{typ} {maj}:{mnr} {access}"


class DeviceState:
    """The v1 devices controller's state: a default and its exceptions."""

    def __init__(self, default_allow=False, exceptions=None):
        self.default_allow = default_allow
        #: {(type, major, minor): access} -- the opposite of the default
        self.exceptions = dict(exceptions or {})

    def apply(self, allow, typ, major, minor, access):
        if typ == "a":
            self.default_allow = allow
            self.exceptions = {}
            return
        key = (typ, major, minor)
        if allow != self.default_allow:
            merged = _canon(self.exceptions.get(key, "") + access)
            self.exceptions[key] = merged
        else:
            left = "".join(ch for ch in self.exceptions.get(key, "") if ch not in access)
            if left:
                self.exceptions[key] = left
            else:
                self.exceptions.pop(key, None)

    @classmethod
    def from_rules(cls, rules, default_allow=False):
        """Replay normalized rules on a cgroup that starts as ``default_allow``.
        A new cgroup inherits its parent; starting from deny matches a config whose
        first rule is runc's "deny all", which is what configs carry."""
        state = cls(default_allow)
        for rule in rules:
            state.apply(*rule)
        return state

    @classmethod
    def from_list(cls, text):
        """From a v1 ``devices.list``: ``a *:* rwm`` alone means allow-all."""
        state = cls(False)
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue
            typ, nums, access = parts
            maj, _, mnr = nums.partition(":")
            major = WILDCARD if maj == "*" else int(maj)
            minor = WILDCARD if mnr == "*" else int(mnr)
            state.apply(True, typ, major, minor, access)
        return state

    def transition(self, target):
        """The (file, line) writes that turn this state into ``target``:
        file is "devices.allow" or "devices.deny"."""
        writes = []
        old = self.exceptions
        if self.default_allow or self.default_allow != target.default_allow:
            # an allow-all cgroup has to be reset; so has a change of default
            writes.append(("devices.allow" if target.default_allow else "devices.deny",
                           "a *:* rwm"))
            old = {}
        back = "devices.allow" if target.default_allow else "devices.deny"
        fwd = "devices.deny" if target.default_allow else "devices.allow"
        for key in sorted(old, key=_order):
            dropped = "".join(ch for ch in old[key] if ch not in target.exceptions.get(key, ""))
            if dropped:
                writes.append((back, rule_string(*key, dropped)))
        for key in sorted(target.exceptions, key=_order):
            gained = "".join(ch for ch in target.exceptions[key] if ch not in old.get(key, ""))
            if gained:
                writes.append((fwd, rule_string(*key, gained)))
        return writes

    def allows(self, typ, major, minor, access):
        """Whether an access is permitted, as the v1 kernel decides: with a deny
        default one allow exception must cover the whole request; with an allow
        default any deny exception sharing one access letter refuses it."""
        for (t, ma, mi), acc in self.exceptions.items():
            if t != typ or (ma != WILDCARD and ma != major) or (mi != WILDCARD and mi != minor):
                continue
            if self.default_allow and any(ch in acc for ch in access):
                return False
            if not self.default_allow and all(ch in acc for ch in access):
                return True
        return self.default_allow


def _order(key):
    typ, major, minor = key
    return (typ, major, minor)


# -- the cgroup v2 program --------------------------------------------------------

# struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; };
# access_type = access << 16 | type
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}
_ACC = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

# opcodes (linux/bpf_common.h, linux/bpf.h)
_LDX_MEM_W = 0x61      # BPF_LDX | BPF_MEM | BPF_W
_ALU32_AND_K = 0x54    # BPF_ALU | BPF_AND | BPF_K
_ALU32_RSH_K = 0x74    # BPF_ALU | BPF_RSH | BPF_K
_ALU32_MOV_K = 0xB4    # BPF_ALU | BPF_MOV | BPF_K
_ALU32_MOV_X = 0xBC    # BPF_ALU | BPF_MOV | BPF_X
_JNE_K = 0x55          # BPF_JMP | BPF_JNE | BPF_K
_JNE_X = 0x5D          # BPF_JMP | BPF_JNE | BPF_X
_JEQ_K = 0x15          # BPF_JMP | BPF_JEQ | BPF_K
_EXIT = 0x95           # BPF_JMP | BPF_EXIT
R0, R1, R2, R3, R4, R5 = range(6)


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


def program(state):
    """The eBPF instructions (bytes, 8 per instruction) enforcing ``state``.

    R2 = device type, R3 = requested access, R4 = major, R5 = minor; then one block
    per exception that jumps to the next block on any mismatch and otherwise
    returns the exception's verdict; the last instruction returns the default.
    """
    head = [
        insn(_LDX_MEM_W, R2, R1, 0), insn(_ALU32_AND_K, R2, imm=0xFFFF),
        insn(_LDX_MEM_W, R3, R1, 0), insn(_ALU32_RSH_K, R3, imm=16),
        insn(_LDX_MEM_W, R4, R1, 4),
        insn(_LDX_MEM_W, R5, R1, 8),
    ]
    blocks = []
    verdict = 0 if state.default_allow else 1
    for (typ, major, minor), access in sorted(state.exceptions.items(), key=lambda kv: _order(kv[0])):
        tests = [(_JNE_K, R2, 0, _TYPES[typ])]
        mask = 0
        for ch in access:
            mask |= _ACC[ch]
        if mask != ACC_MKNOD | ACC_READ | ACC_WRITE:
            tests.append((_ALU32_MOV_X, R1, R3, 0))
            tests.append((_ALU32_AND_K, R1, 0, mask))
            if state.default_allow:
                # a deny exception matches any overlap (the kernel's partial match)
                tests.append((_JEQ_K, R1, 0, 0))
            else:
                # an allow exception must cover the whole request: (R3 & mask) == R3
                tests.append((_JNE_X, R1, R3, 0))
        if major != WILDCARD:
            tests.append((_JNE_K, R4, 0, major))
        if minor != WILDCARD:
            tests.append((_JNE_K, R5, 0, minor))
        blocks.append(tests)
    out = list(head)
    for tests in blocks:
        size = len(tests) + 2  # + mov r0 + exit
        for idx, (code, dst, src, imm) in enumerate(tests):
            if code in (_JNE_K, _JNE_X, _JEQ_K):
                out.append(insn(code, dst, src, off=size - idx - 1, imm=imm))
            else:
                out.append(insn(code, dst, src, imm=imm))
        out.append(insn(_ALU32_MOV_K, R0, imm=verdict))
        out.append(insn(_EXIT))
    out.append(insn(_ALU32_MOV_K, R0, imm=1 if state.default_allow else 0))
    out.append(insn(_EXIT))
    return b"".join(out)


def run_program(code, typ, major, minor, access):
    """Interpret a program from ``program`` (its few opcodes) for one request:
    lets the unit tests check the assembled code against ``DeviceState.allows``."""
    acc = 0
    for ch in access:
        acc |= _ACC[ch]
    ctx = struct.pack("<III", (acc << 16) | _TYPES[typ], major, minor)
    regs = [0] * 11
    pc = 0
    n = len(code) // 8
    while pc < n:
        op, regs_b, off, imm = struct.unpack_from("<BBhi", code, pc * 8)
        dst, src = regs_b & 0xF, regs_b >> 4
        pc += 1
        if op == _LDX_MEM_W:
            assert src == R1
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == _ALU32_AND_K:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif op == _ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif op == _ALU32_MOV_K:
            regs[dst] = imm & 0xFFFFFFFF
        elif op == _ALU32_MOV_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif op == _JNE_K:
            if regs[dst] != imm & 0xFFFFFFFFFFFFFFFF:
                pc += off
        elif op == _JEQ_K:
            if regs[dst] == imm & 0xFFFFFFFFFFFFFFFF:
                pc += off
        elif op == _JNE_X:
            if regs[dst] != regs[src]:
                pc += off
        elif op == _EXIT:
            return regs[R0] == 1
        else:
            raise AssertionError(f"unknown opcode {op:#x}")
    raise AssertionError("fell off the end of the program")
