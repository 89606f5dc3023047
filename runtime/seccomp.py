"""Seccomp: config.json's ``linux.seccomp`` compiled to BPF, then loaded.

``prepare`` runs in the runtime process before the container is set up: it checks
the profile, has libseccomp compile it, and keeps the resulting BPF program as
bytes, so a bad profile fails early and the container init does no compiling.
``Filter.load`` runs in the container init just before exec: one seccomp(2) call.

As runc 1.1.5 does:

* syscall names this libseccomp does not know are skipped (``Filter.warnings``
  says which, for a debug log); a rule with the default action is dropped;
* ``SCMP_ACT_KILL`` is ``SCMP_ACT_KILL_THREAD``; ``SCMP_ACT_ERRNO`` and
  ``SCMP_ACT_TRACE`` carry EPERM unless ``errnoRet`` says otherwise;
* conditions on the same argument become one rule each (they match as "or");
* unless the default action allows, syscalls numbered above the highest one the
  profile names (per listed architecture) fail with ENOSYS rather than the
  default action, so that libc falls back from syscalls newer than the profile;
* ``SCMP_ACT_NOTIFY`` is refused as the default action and for ``write``.

Unlike runc 1.1.5, ``flags`` are honoured (runc refuses them all), and an
``errnoRet`` on an action without one is an error, as the spec requires.
The no_new_privs bit is not touched here: without it, loading needs
CAP_SYS_ADMIN, so the init loads before dropping capabilities in that case.
"""

import errno
import os
import sys

from . import jsonfast
from .errors import ConfigError, Error, SysError
from .linux._seccomp import ffi, lib

_WHERE = "linux.seccomp"

# name -> (action, takes errnoRet)
_ACTIONS = {
    "SCMP_ACT_KILL": (lib.SCMP_ACT_KILL_THREAD, False),
    "SCMP_ACT_KILL_PROCESS": (lib.SCMP_ACT_KILL_PROCESS, False),
    "SCMP_ACT_KILL_THREAD": (lib.SCMP_ACT_KILL_THREAD, False),
    "SCMP_ACT_TRAP": (lib.SCMP_ACT_TRAP, False),
    "SCMP_ACT_ERRNO": (lib.SECCOMP_RET_ERRNO, True),
    "SCMP_ACT_TRACE": (lib.SECCOMP_RET_TRACE, True),
    "SCMP_ACT_ALLOW": (lib.SCMP_ACT_ALLOW, False),
    "SCMP_ACT_LOG": (lib.SCMP_ACT_LOG, False),
    "SCMP_ACT_NOTIFY": (lib.SCMP_ACT_NOTIFY, False),
}

_OPERATORS = {
    "SCMP_CMP_NE": lib.SCMP_CMP_NE,
    "SCMP_CMP_LT": lib.SCMP_CMP_LT,
    "SCMP_CMP_LE": lib.SCMP_CMP_LE,
    "SCMP_CMP_EQ": lib.SCMP_CMP_EQ,
    "SCMP_CMP_GE": lib.SCMP_CMP_GE,
    "SCMP_CMP_GT": lib.SCMP_CMP_GT,
    "SCMP_CMP_MASKED_EQ": lib.SCMP_CMP_MASKED_EQ,
}

# The spec's list (libseccomp 2.6); which of them work depends on the libseccomp
# present: SCMP_ARCH_FOO is libseccomp's "foo".
_ARCHS = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
)

_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": lib.SECCOMP_FILTER_FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": lib.SECCOMP_FILTER_FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": lib.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": lib.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}
# A flag that only makes sense with a listener is probed with one.
_PROBE_WITH = {lib.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: lib.SECCOMP_FILTER_FLAG_NEW_LISTENER}

_MAX_ARGS = 6
_X32_SYSCALL_BIT = 0x40000000
_INSN = ffi.sizeof("struct sock_filter")


class Filter:
    """A compiled profile: ``program`` (BPF instructions, native byte order) and
    the seccomp(2) ``flags``.  Both are plain values, so a Filter can be rebuilt
    from them in another process: ``Filter(program, flags)``."""

    __slots__ = ("program", "flags", "warnings")

    def __init__(self, program, flags, warnings=()):
        self.program = program
        self.flags = flags
        self.warnings = list(warnings)

    @property
    def notify(self):
        """True when loading returns a listener fd for SCMP_ACT_NOTIFY."""
        return bool(self.flags & lib.SECCOMP_FILTER_FLAG_NEW_LISTENER)

    def load(self):
        """Install the filter on the calling thread (all threads with TSYNC).
        Returns the listener fd (close-on-exec) when the profile notifies, else None."""
        ret = lib.rt_seccomp_set_filter(self.flags, self.program, len(self.program) // _INSN)
        if ret < 0:
            raise SysError("load seccomp filter", ffi.errno)
        if self.notify:
            return ret
        if ret > 0:  # TSYNC without a listener names the thread that failed
            raise Error(f"load seccomp filter: thread {ret} could not be synchronized")
        return None

    def __repr__(self):
        return f"<seccomp.Filter {len(self.program) // _INSN} insns flags={self.flags:#x}>"


def cache_dir():
    """Where compiled filters are kept between runs: /var/cache/runtime/seccomp for
    root, $XDG_CACHE_HOME (or ~/.cache)/runtime/seccomp otherwise: a cache, not
    container state, so it lives outside --root."""
    if os.geteuid() == 0:
        return "/var/cache/runtime/seccomp"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "runtime", "seccomp")


def prepare(config, cache_dir=None):
    """Compile ``config`` (the ``linux.seccomp`` object) to a `Filter`.

    Returns None when it has neither a default action nor syscalls, which runc
    takes as seccomp disabled.  Raises ConfigError naming the offending field.

    With ``cache_dir`` (a directory only root can write, e.g. under the state
    root), compiled programs are kept there keyed by a hash of everything that
    goes into them, so a profile seen before (podman sends the same one every
    time) costs a file read instead of libseccomp's compilation."""
    default_name = config.get("defaultAction") or ""
    syscalls = config.get("syscalls") or ()
    if not default_name and not syscalls:
        return None
    default = _action(default_name, config.get("defaultErrnoRet"), _WHERE, "defaultAction",
                      "defaultErrnoRet")
    if default == lib.SCMP_ACT_NOTIFY:
        raise ConfigError(f"{_WHERE}.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    flags = _flags(config.get("flags") or ())
    tokens = _architectures(config.get("architectures") or ())

    rules = []  # (path, action, names, [conditions])
    notify = False
    for i, call in enumerate(syscalls):
        where = f"{_WHERE}.syscalls[{i}]"
        if not isinstance(call, dict):
            raise ConfigError(where, "must be an object")
        action = _action(call.get("action", ""), call.get("errnoRet"), where, "action", "errnoRet")
        names = call.get("names")
        if not isinstance(names, list) or not names:
            raise ConfigError(f"{where}.names", "must list at least one syscall")
        for j, name in enumerate(names):
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}.names[{j}]", "must be a syscall name")
        if action == lib.SCMP_ACT_NOTIFY:
            if "write" in names:
                raise ConfigError(where, "SCMP_ACT_NOTIFY cannot be used for the write syscall")
            notify = True
        rules.append((where, action, names, _conditions(call.get("args") or (), where)))

    if notify:
        if not config.get("listenerPath"):
            raise ConfigError(f"{_WHERE}.listenerPath", "required when SCMP_ACT_NOTIFY is used")
        flags |= lib.SECCOMP_FILTER_FLAG_NEW_LISTENER
        if flags & lib.SECCOMP_FILTER_FLAG_TSYNC:
            flags |= lib.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
    elif flags & lib.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV:
        raise ConfigError(f"{_WHERE}.flags",
                          "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule")
    if config.get("listenerMetadata") and not config.get("listenerPath"):
        raise ConfigError(f"{_WHERE}.listenerMetadata", "must not be set without listenerPath")

    if cache_dir is None:
        program, warnings = _build(default, tokens, rules)
    else:
        program, warnings = _cached(cache_dir, default, tokens, rules)
    return Filter(program, flags, warnings)


def _build(default, tokens, rules):
    """(program, warnings): libseccomp's BPF, behind the ENOSYS stub if one is due."""
    warnings = []
    program = _compile(default, tokens, rules, warnings)
    # Not when the default lets syscalls run (a tracer handles ENOSYS itself),
    # nor when it is ENOSYS already.
    if default & lib.SECCOMP_RET_ACTION_FULL not in (lib.SCMP_ACT_ALLOW, lib.SCMP_ACT_LOG,
                                                     lib.SECCOMP_RET_TRACE) \
            and default != lib.SECCOMP_RET_ERRNO | errno.ENOSYS:
        program = _enosys_stub(tokens, rules, warnings) + program
    if len(program) // _INSN > lib.BPF_MAXINSNS:
        raise ConfigError(_WHERE, f"the filter has {len(program) // _INSN} instructions, "
                                  f"more than the kernel's {lib.BPF_MAXINSNS}")
    return program, warnings


def _action(name, errno_ret, where, field, errno_field):
    try:
        action, takes_errno = _ACTIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"{where}.{field}", f"unknown action {_quote(name)}") from None
    if errno_ret is None:
        return action | 1 if takes_errno else action  # EPERM
    if not takes_errno:
        raise ConfigError(f"{where}.{errno_field}", f"not allowed with {name}")
    if type(errno_ret) is not int or not 0 <= errno_ret <= lib.SECCOMP_RET_DATA:
        raise ConfigError(f"{where}.{errno_field}",
                          f"must be an integer from 0 to {lib.SECCOMP_RET_DATA}")
    return action | errno_ret


def _flags(names):
    flags = 0
    for i, name in enumerate(names):
        flag = _FLAGS.get(name) if isinstance(name, str) else None
        if flag is None:
            raise ConfigError(f"{_WHERE}.flags[{i}]", f"unknown flag {_quote(name)}")
        if not lib.rt_seccomp_flags_known(flag | _PROBE_WITH.get(flag, 0)):
            raise ConfigError(f"{_WHERE}.flags[{i}]", f"{name} is not supported by this kernel")
        flags |= flag
    return flags


def _architectures(names):
    tokens = []
    for i, name in enumerate(names):
        token = _arch_token(name)
        if not token:
            if name in _ARCHS:
                rule = f"{name} is not supported by libseccomp {libseccomp_version()}"
            else:
                rule = f"unknown architecture {_quote(name)}"
            raise ConfigError(f"{_WHERE}.architectures[{i}]", rule)
        if all(token != t for _, _, t in tokens):
            tokens.append((i, name, token))
    return tokens


def _arch_token(name):
    if not isinstance(name, str) or not name.startswith("SCMP_ARCH_"):
        return 0
    return lib.seccomp_arch_resolve_name(name[10:].lower().encode())


def _conditions(args, where):
    conds = []
    for j, arg in enumerate(args):
        at = f"{where}.args[{j}]"
        if not isinstance(arg, dict):
            raise ConfigError(at, "must be an object")
        index = arg.get("index")
        if type(index) is not int or not 0 <= index < _MAX_ARGS:
            raise ConfigError(f"{at}.index", f"must be an integer from 0 to {_MAX_ARGS - 1}")
        op = _OPERATORS.get(arg.get("op")) if isinstance(arg.get("op"), str) else None
        if op is None:
            raise ConfigError(f"{at}.op", f"unknown operator {_quote(arg.get('op'))}")
        values = []
        for field in ("value", "valueTwo"):
            v = arg.get(field, 0)
            if type(v) is not int or not 0 <= v < 1 << 64:
                raise ConfigError(f"{at}.{field}", "must be an unsigned 64-bit integer")
            values.append(v)
        conds.append((index, op, values[0], values[1]))
    return conds


def _compile(default, tokens, rules, warnings):
    """libseccomp's BPF for the rules."""
    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise Error("seccomp: libseccomp could not create a filter (is the default action "
                    "supported by this kernel?)")
    try:
        ret = lib.seccomp_attr_set(ctx, lib.SCMP_FLTATR_API_SYSRAWRC, 1)
        if ret < 0:
            raise SysError("seccomp: set filter attribute", -ret)
        for i, name, token in tokens:
            ret = lib.seccomp_arch_add(ctx, token)
            if ret < 0 and ret != -errno.EEXIST:  # the native one is there already
                # EDOM: the other byte order (libseccomp filters are one-endian)
                raise ConfigError(f"{_WHERE}.architectures[{i}]",
                                  f"{name} cannot be used on this machine: "
                                  f"{os.strerror(-ret).lower()}")
        resolved = {}
        for where, action, names, conds in rules:
            if action == default:
                continue
            # One rule per condition if two share an argument (libseccomp would
            # refuse them in one rule; separately they match as "or").
            indexes = [c[0] for c in conds]
            groups = [conds] if len(set(indexes)) == len(indexes) else [[c] for c in conds]
            arrays = []
            for group in groups:
                array = ffi.new("struct scmp_arg_cmp[]", len(group) or 1)
                for k, (index, op, a, b) in enumerate(group):
                    array[k].arg, array[k].op = index, op
                    array[k].datum_a, array[k].datum_b = a, b
                arrays.append((len(group), array))
            for name in names:
                nr = resolved.get(name)
                if nr is None:
                    nr = resolved[name] = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == -1:  # __NR_SCMP_ERROR
                    warnings.append(f"unknown seccomp syscall {_quote(name)} ignored")
                    continue
                for count, array in arrays:
                    ret = lib.seccomp_rule_add_array(ctx, action, nr, count, array)
                    if ret < 0:
                        raise ConfigError(where, f"adding a rule for {name}: "
                                                 f"{os.strerror(-ret).lower()}")
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            ret = lib.seccomp_export_bpf(ctx, fd)
            if ret < 0:
                raise SysError("seccomp: export filter", -ret)
            return os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


# --- the program cache -------------------------------------------------------------

_CACHE_FORMAT = 1  # bump when _build's output for the same input changes
_CACHE_MAX = 32  # programs kept; the least recently used go first


def _cached(cache_dir, default, tokens, rules):
    """`_build` through a directory of programs: each file is named by the hash
    of _build's whole input (and of what compiles it) and holds the warnings as
    a JSON line, then the program."""
    from . import __version__

    try:
        from _sha256 import sha256
    except ImportError:  # Python 3.12 merged it into _sha2
        from _sha2 import sha256

    source = [_CACHE_FORMAT, __version__, libseccomp_version(), lib.seccomp_arch_native(),
              default, [token for _, _, token in tokens],
              [[action, names, conds] for _, action, names, conds in rules]]
    path = os.path.join(cache_dir, sha256(jsonfast.dumps(source).encode()).hexdigest())
    try:
        with open(path, "rb") as f:
            head, _, program = f.read().partition(b"\n")
        if program and len(program) % _INSN == 0:
            os.utime(path)
            return program, jsonfast.loads(head)
    except (OSError, ValueError):
        pass
    program, warnings = _build(default, tokens, rules)
    try:
        os.makedirs(cache_dir, 0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(jsonfast.dumps(warnings).encode() + b"\n" + program)
        os.rename(tmp, path)
        names = os.listdir(cache_dir)
        if len(names) > _CACHE_MAX:
            paths = [os.path.join(cache_dir, name) for name in names]
            paths.sort(key=lambda p: os.stat(p).st_mtime_ns)
            for old in paths[:-_CACHE_MAX]:
                os.unlink(old)
    except OSError:
        pass  # a cache that cannot be written only costs time
    return program, warnings


# --- the ENOSYS stub -------------------------------------------------------------

_LD = lib.BPF_LD | lib.BPF_W | lib.BPF_ABS
_JEQ = lib.BPF_JMP | lib.BPF_JEQ | lib.BPF_K
_JGT = lib.BPF_JMP | lib.BPF_JGT | lib.BPF_K
_JSET = lib.BPF_JMP | lib.BPF_JSET | lib.BPF_K
_JA = lib.BPF_JMP | lib.BPF_JA
_RET = lib.BPF_RET | lib.BPF_K
_OFF_NR = ffi.offsetof("struct seccomp_data", "nr")
_OFF_ARCH = ffi.offsetof("struct seccomp_data", "arch")


def _enosys_stub(tokens, rules, warnings):
    """BPF that, per listed architecture, answers ENOSYS to syscall numbers above
    the highest the profile names there, and passes everything else on to the
    program that follows (runc's patchbpf, in its effect).  x32 shares
    x86_64's audit arch with bit 30 set in the number; s390's syscall 0
    multiplexes numbers the kernel does not know."""
    names = {name for _, _, ns, _ in rules for name in ns}
    by_audit = {}  # audit arch -> {token: highest nr}
    for _, arch, token in tokens:
        top = max((lib.seccomp_syscall_resolve_name_arch(token, n.encode()) for n in names),
                  default=-1)
        if top <= 0:
            warnings.append(f"could not find any syscalls for arch {arch}")
            continue
        audit = lib.AUDIT_ARCH_X86_64 if token == lib.SCMP_ARCH_X32 else token
        by_audit.setdefault(audit, {})[token] = top

    insns = []  # [code, jt, jf, k]; jt/jf (and k of ja) may name a label
    labels = {}
    for n, (audit, tops) in enumerate(by_audit.items()):
        ok, enosys, other = f"ok{n}", f"enosys{n}", f"next{n}"
        insns += [[_LD, 0, 0, _OFF_ARCH], [_JEQ, 0, other, audit], [_LD, 0, 0, _OFF_NR]]
        if lib.SCMP_ARCH_S390 in tops or lib.SCMP_ARCH_S390X in tops:
            insns.append([_JEQ, enosys, 0, 0])
        if audit == lib.AUDIT_ARCH_X86_64:
            x86_64, x32 = tops.get(lib.SCMP_ARCH_X86_64), tops.get(lib.SCMP_ARCH_X32)
            if x86_64 and x32:
                insns += [[_JSET, 0, f"x86_64{n}", _X32_SYSCALL_BIT], [_JGT, enosys, ok, x32]]
                labels[f"x86_64{n}"] = len(insns)
                insns.append([_JGT, enosys, ok, x86_64])
            elif x32:
                insns += [[_JSET, 0, ok, _X32_SYSCALL_BIT], [_JGT, enosys, ok, x32]]
            else:
                insns += [[_JSET, ok, 0, _X32_SYSCALL_BIT], [_JGT, enosys, ok, x86_64]]
        else:
            insns.append([_JGT, enosys, ok, max(tops.values())])
        labels[ok] = len(insns)
        insns.append([_JA, 0, 0, "filter"])
        labels[enosys] = len(insns)
        insns.append([_RET, 0, 0, lib.SECCOMP_RET_ERRNO | errno.ENOSYS])
        labels[other] = len(insns)
    labels["filter"] = len(insns)

    stub = ffi.new("struct sock_filter[]", len(insns) or 1)
    for pc, (code, jt, jf, k) in enumerate(insns):
        jt, jf = (labels[j] - pc - 1 if isinstance(j, str) else j for j in (jt, jf))
        if isinstance(k, str):
            k = labels[k] - pc - 1
        stub[pc].code, stub[pc].jt, stub[pc].jf, stub[pc].k = code, jt, jf, k
    return bytes(ffi.buffer(stub, len(insns) * _INSN))


# --- notification -----------------------------------------------------------------

def send_notify_fd(listener_path, fd, state, metadata=None, pid=None):
    """Send the container process state and the listener ``fd`` (SCM_RIGHTS, one
    message, one connection) to the seccomp agent at ``listener_path``.

    ``state`` is the container's state object (runtime.md "State") as it stands:
    runc sends status "creating" for the init, and the init's state with the new
    process's ``pid`` for exec.  ``pid`` defaults to ``state["pid"]``."""
    import _socket

    from . import OCI_VERSION

    doc = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"],
           "pid": state.get("pid") if pid is None else pid}
    if metadata:
        doc["metadata"] = metadata
    doc["state"] = state
    data = jsonfast.dumps(doc).encode()
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        try:
            sock.connect(listener_path)
        except OSError as e:
            raise SysError("connect to seccomp agent", e.errno, listener_path) from None
        rights = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))]
        try:
            sent = sock.sendmsg([data], rights)
            if sent < len(data):
                sock.sendall(data[sent:])
        except OSError as e:
            raise SysError("send seccomp fd to", e.errno, listener_path) from None
    finally:
        sock.close()


# --- features ----------------------------------------------------------------------

def features():
    """The ``linux.seccomp`` object of `runtime features` (features-linux.md)."""
    return {
        "enabled": True,
        "actions": sorted(_ACTIONS),
        "operators": sorted(_OPERATORS),
        "archs": sorted(name for name in _ARCHS if _arch_token(name)),
        "knownFlags": list(_FLAGS),
        "supportedFlags": [name for name, flag in _FLAGS.items()
                           if lib.rt_seccomp_flags_known(flag | _PROBE_WITH.get(flag, 0))],
    }


def libseccomp_version():
    """The version of the libseccomp loaded, e.g. "2.5.4" (for the features
    annotation io.github.seccomp.libseccomp.version)."""
    v = lib.seccomp_version()
    return f"{v.major}.{v.minor}.{v.micro}"


def _quote(value):
    return jsonfast.dumps(value) if isinstance(value, str) else repr(value)
