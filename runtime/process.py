"""The container process's attributes (config.md "process"), applied by the init of
a container and by ``exec`` alike, and the final exec through the sealed helper."""

import os
import resource
import stat

from . import capabilities, linux, sched
from .errors import Error, HookError, SysError

_RLIMITS = {name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")}
_INFINITY = 1 << 63


def environment(env_list):
    env = {}
    for item in env_list or ():
        key, sep, value = item.partition("=")
        if key:
            env[key] = value
    return env


def set_rlimits(rlimits):
    for rl in rlimits or ():
        res = _RLIMITS.get(rl["type"])
        if res is None:
            raise Error(f"process.rlimits: unknown resource limit {rl['type']!r}")
        soft, hard = (resource.RLIM_INFINITY if v >= _INFINITY else v
                      for v in (rl["soft"], rl["hard"]))
        try:
            resource.setrlimit(res, (soft, hard))
        except (OSError, ValueError) as e:
            err = getattr(e, "errno", None) or 1
            raise SysError(f"setrlimit {rl['type']} soft={rl['soft']} hard={rl['hard']}", err) from None


def kill_and_reap(*pids):
    """SIGKILL and reap children of ours (a create or exec that failed)."""
    for pid in pids:
        if pid:
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def home_of(uid):
    """The user's home from the container's /etc/passwd, else "/" (as runc)."""
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f:
                parts = line.decode(errors="replace").rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def find_executable(name, env):
    """exec.LookPath with the process's PATH, with Go's error texts as runc shows them."""
    if "/" in name:
        _check_executable(name, name)
        return name
    for d in (env.get("PATH") or "").split(":"):
        candidate = os.path.join(d or ".", name)
        try:
            _check_executable(candidate, name)
            return candidate
        except Error:
            continue
    raise Error(f'exec: "{name}": executable file not found in $PATH')


def _check_executable(path, name):
    try:
        st = os.stat(path)
    except OSError as e:
        raise Error(f'exec: "{name}": stat {path}: {os.strerror(e.errno).lower()}') from None
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        raise Error(f'exec: "{name}": permission denied')


def set_user(user):
    """Supplementary groups, gid, uid (capabilities kept through the switch)."""
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    groups = list(user.get("additionalGids") or ())
    try:
        os.setgroups(groups)
    except PermissionError:
        # setgroups is denied in a user namespace made without it ("deny" in
        # /proc/self/setgroups, as rootless containers are): keep going like runc
        # only when no groups were asked for.
        if groups:
            raise SysError("setgroups", 1, str(groups)) from None
    except ValueError:  # more than NGROUPS_MAX (exec's -g; config.json is checked before)
        raise Error(f"setgroups: {len(groups)} groups is more than the kernel's limit") from None
    try:
        os.setresgid(gid, gid, gid)
    except OSError as e:
        raise SysError("setgid", e.errno, str(gid)) from None
    try:
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise SysError("setuid", e.errno, str(uid)) from None


def drop_privileges(proc, log):
    """process.user and process.capabilities, in the order that keeps the
    capabilities asked for: bounding set, user switch with KEEPCAPS, then capset.
    ``log`` has warn() and debug() (the channel to the runtime)."""
    # What this process holds is all it can hand on (a host without CAP_SYS_RESOURCE
    # in its bounding set, a user namespace...).
    sets, unknown = capabilities.masks(proc.get("capabilities"), available=linux.capget()[1])
    if unknown:
        log.warn("ignoring unknown or unavailable capabilities: " + ", ".join(unknown))
    if proc.get("capabilities") is not None:
        capabilities.drop_bounding(sets["bounding"])
    linux.prctl(linux.PR_SET_KEEPCAPS, 1, what="keep capabilities")
    set_user(proc.get("user") or {})
    linux.prctl(linux.PR_SET_KEEPCAPS, 0, what="keep capabilities")
    if proc.get("capabilities") is not None:
        capabilities.apply(sets, log.debug)
    if proc.get("noNewPrivileges"):
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1, what="set no_new_privs")


def finish(proc, seccomp_filter, chan, has_process=True):
    """The last steps before the helper: privileges, and the seccomp filter.
    Returns the filter the helper is to load as its very last step before the
    program (no_new_privs set, no listener), or None.  Otherwise it is loaded
    here: without no_new_privs before the privileges are dropped (loading it then
    needs CAP_SYS_ADMIN, as in runc); with a listener (SCMP_ACT_NOTIFY) its fd goes
    to the parent at once ("seccomp"), so that the agent holds it before any
    notified syscall can wait for it."""
    nnp = proc.get("noNewPrivileges")
    here = seccomp_filter is not None and (not nnp or seccomp_filter.notify)
    capabilities.last_cap()     # asked of the kernel before a filter may deny prctl
    if here and not nnp:
        _load_filter(seccomp_filter, chan)
    if has_process:
        drop_privileges(proc, chan)
    if here and nnp:
        _load_filter(seccomp_filter, chan)
    return None if here else seccomp_filter


def _load_filter(seccomp_filter, chan):
    fd = seccomp_filter.load()
    if fd is not None:
        chan.send("seccomp", fds=[fd])
        os.close(fd)


def apply_attributes(lin, proc):
    """What the config gives every process of the container, the init and exec's
    alike, once it is in the container's cgroup: linux.personality and
    linux.memoryPolicy, rlimits, scheduler and I/O priority, and
    execCPUAffinity.final (initial is the parent's to set, before the cgroup)."""
    if lin.get("personality"):
        sched.apply_personality(lin["personality"])
    if lin.get("memoryPolicy"):
        sched.apply_memory_policy(lin["memoryPolicy"])
    set_rlimits(proc.get("rlimits"))
    apply_scheduling(proc)
    final = (proc.get("execCPUAffinity") or {}).get("final")
    if final:
        sched.apply_affinity(final)


def apply_scheduling(proc):
    """scheduler and ioPriority (oomScoreAdj is written where /proc is the host's)."""
    if proc.get("scheduler"):
        sched.apply_scheduler(proc["scheduler"])
    if proc.get("ioPriority"):
        sched.apply_io_priority(proc["ioPriority"])


def close_fds_except(first, keep):
    """Close every fd from ``first`` up but those in ``keep``."""
    lo = first
    for fd in sorted(k for k in keep if k >= first):
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 0x7FFFFFFF)


def prepare_fds(first_free, keep=()):
    """Only stdio and the preserved fds may reach the container process: everything
    from ``first_free`` up becomes close-on-exec, except ``keep`` (the helper's)."""
    linux.cloexec_from(first_free)
    for fd in range(3, first_free):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    for fd in keep:
        os.set_inheritable(fd, True)


def exec_label(proc):
    """The LSM attribute and label the helper writes right before the exec."""
    if proc.get("apparmorProfile"):
        return ("/proc/thread-self/attr/apparmor/exec"
                if os.path.exists("/proc/thread-self/attr/apparmor/exec")
                else "/proc/thread-self/attr/exec", "exec " + proc["apparmorProfile"])
    if proc.get("selinuxLabel"):
        return ("/proc/thread-self/attr/exec", proc["selinuxLabel"])
    return None


def helper_failure(data, program):
    """The error a failed exec reported on the helper's report fd: "E<errno>" (the
    exec or a step of the helper before it), "S<errno>" (loading the seccomp
    filter), "H<text>" (a startContainer hook), other text as is."""
    text = data.decode(errors="replace")
    if text[:1] in ("E", "S") and text[1:].isdigit():
        reason = os.strerror(int(text[1:])).lower()
        return Error(f"load seccomp filter: {reason}" if text[0] == "S" else f"exec {program}: {reason}")
    if text.startswith("H"):
        return HookError(text[1:])
    return Error(text)


def exec_helper(helper_fd, path, argv, env, fifo_fd=None, report_fd=None, label=None,
                seccomp=None):
    """Replace this process with the sealed helper, which (waits for start and)
    execs the user's program, loading the ``seccomp`` filter right before.  Never
    returns."""
    args = ["runtime-init"]
    if fifo_fd is not None:
        args += ["-f", str(fifo_fd)]
    if report_fd is not None:
        args += ["-w", str(report_fd)]
    if label:
        args += ["-l", label[0], label[1]]
    if seccomp is not None:
        # inherited by the helper, which reads and closes it
        fd = os.memfd_create("seccomp-bpf", 0)
        os.write(fd, seccomp.program)
        os.lseek(fd, 0, os.SEEK_SET)
        args += ["-s", str(fd), str(seccomp.flags)]
    if path is not None:
        if not path.startswith("/"):
            path = os.path.join(os.getcwd(), path)
        args += [path] + list(argv)
    try:
        os.execve(helper_fd, args, env)
    except OSError as e:
        raise SysError("exec runtime-init", e.errno) from None
