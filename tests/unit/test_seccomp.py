"""runtime.seccomp against the real kernel: each test forks a child, loads a filter
there and reports what its syscalls did.  Needs root (loading without
no_new_privs needs CAP_SYS_ADMIN) and libseccomp."""

import ctypes
import errno
import fcntl
import os
import platform
import resource
import select
import signal
import socket
import threading

import pytest

from runtime import jsonfast
from runtime.errors import ConfigError, SysError

seccomp = pytest.importorskip("runtime.seccomp")
from runtime.linux._seccomp import ffi, lib  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# The architectures a profile lists on this machine (Docker's choice).
ARCHES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}.get(platform.machine(), [])


def nr(name):
    n = lib.seccomp_syscall_resolve_name(name.encode())
    assert n >= 0, name
    return n


def sc(name, *args):
    """The raw syscall: its result, or -errno."""
    ret = _libc.syscall(ctypes.c_long(nr(name)), *(ctypes.c_ulong(a) for a in args))
    return ret if ret >= 0 else -ctypes.get_errno()


def run(filt, fn=lambda: None, before=None):
    """Load ``filt`` in a forked child, run ``fn`` there; return (fn's result, wait status).
    The result is None when the child died before reporting."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if before:
                before()
            fd = filt.load()
            out = {"ok": fn(fd) if fd is not None else fn()}
        except BaseException as e:  # noqa: B036 - reported to the parent
            out = {"error": repr(e)}
        os.write(w, jsonfast.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if not data:
        return None, status
    out = jsonfast.loads(data)
    assert "error" not in out, out["error"]
    return out["ok"], status


def profile(*syscalls, default="SCMP_ACT_ALLOW", **more):
    return {"defaultAction": default, "syscalls": list(syscalls), **more}


def rule(names, action="SCMP_ACT_ERRNO", **more):
    return {"names": names if isinstance(names, list) else [names], "action": action, **more}


def status_fields():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def mkdir_errno(path):
    try:
        os.mkdir(path)
    except OSError as e:
        return e.errno
    os.rmdir(path)
    return 0


# --- a Docker-like default profile -------------------------------------------------

ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64
fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv
futex_wake futimesat get_mempolicy get_robust_list get_thread_area getcpu getcwd
getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom
getresgid getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname
getsockopt gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents
io_pgetevents_time64 io_setup io_submit io_uring_enter io_uring_register io_uring_setup
ioctl ioprio_get ioprio_set ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr
llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl
msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep
newfstatat _newselect open openat openat2 pause pidfd_getfd pidfd_open pidfd_send_signal
pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64
preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2
restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
sendmmsg sendmsg sendto set_robust_list set_thread_area set_tid_address setfsgid
setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
setreuid32 setrlimit setsid setsockopt setuid setuid32 setxattr shmat shmctl shmdt
shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
socketpair splice stat stat64 statfs statfs64 statmount statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times
tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls
arch_prctl modify_ldt chroot
""".split()


def docker_like(default_errno=1, allowed=ALLOWED):
    """A default profile as Docker/podman send it, resolved for the default
    capabilities: an allowlist, personality() and clone() restricted by argument,
    clone3 answered ENOSYS, AF_VSOCK sockets refused."""
    personas = [0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": default_errno,
        "architectures": ARCHES,
        "syscalls": [
            rule(list(allowed), "SCMP_ACT_ALLOW"),
            *(rule("personality", "SCMP_ACT_ALLOW",
                   args=[{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]) for p in personas),
            rule("clone", "SCMP_ACT_ALLOW",
                 args=[{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                        "op": "SCMP_CMP_MASKED_EQ"}]),
            rule("clone3", "SCMP_ACT_ERRNO", errnoRet=errno.ENOSYS),
            rule("socket", "SCMP_ACT_ALLOW",
                 args=[{"index": 0, "value": int(socket.AF_VSOCK), "op": "SCMP_CMP_NE"}]),
            rule(["bpf", "mount", "umount2", "unshare", "setns", "reboot", "ptrace",
                  "kexec_load", "init_module", "delete_module", "swapon"], "SCMP_ACT_ERRNO"),
        ],
    }


# --- actions -----------------------------------------------------------------------

def test_errno_defaults_to_eperm():
    filt = seccomp.prepare(profile(rule(["mkdir", "mkdirat"])))
    out, status = run(filt, lambda: mkdir_errno("/tmp/seccomp-test-never"))
    assert out == errno.EPERM and os.WIFEXITED(status)


def test_errno_ret():
    filt = seccomp.prepare(profile(rule("getcwd", errnoRet=42)))

    def child():
        try:
            os.getcwd()
        except OSError as e:
            return e.errno

    assert run(filt, child)[0] == 42


def test_status_shows_filter_mode():
    filt = seccomp.prepare(profile(rule("getcwd")))
    out, _ = run(filt, status_fields)
    assert out["Seccomp"] == "2"
    assert int(out["Seccomp_filters"]) >= 1


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
def test_killing_actions(action):
    filt = seccomp.prepare(profile(rule("getppid", action)))
    out, status = run(filt, lambda: sc("getppid"))
    assert out is None
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_kill_spares_other_syscalls():
    filt = seccomp.prepare(profile(rule("getppid", "SCMP_ACT_KILL")))
    out, status = run(filt, lambda: sc("getpid") > 0)
    assert out is True and os.WIFEXITED(status)


@pytest.mark.parametrize("action", ["SCMP_ACT_LOG", "SCMP_ACT_ALLOW"])
def test_allowing_actions(action):
    config = docker_like(default_errno=errno.EACCES,
                         allowed=[n for n in ALLOWED if n not in ("getppid", "getcwd")])
    config["syscalls"].append(rule("getppid", action))
    out, _ = run(seccomp.prepare(config), lambda: [sc("getppid"), sc("getcwd", 0, 0)])
    assert out == [os.getpid(), -errno.EACCES]


def test_trace_without_tracer_is_enosys():
    filt = seccomp.prepare(profile(rule("getppid", "SCMP_ACT_TRACE")))
    assert run(filt, lambda: sc("getppid"))[0] == -errno.ENOSYS


def test_rule_with_the_default_action_is_dropped():
    filt = seccomp.prepare(profile(rule("mkdir"), default="SCMP_ACT_ERRNO"))
    assert filt.program == seccomp.prepare(profile(default="SCMP_ACT_ERRNO")).program


# --- arguments ---------------------------------------------------------------------

def test_personality_argument_filter():
    filt = seccomp.prepare(profile(rule("personality", args=[
        {"index": 0, "value": 0x0008, "op": "SCMP_CMP_EQ"}])))

    def child():
        return [sc("personality", 0x0008), sc("personality", 0xFFFFFFFF) >= 0,
                sc("personality", 0)]

    assert run(filt, child)[0] == [-errno.EPERM, True, 0]


# umask(2) with these masks; which of them the rule refuses
PROBES = [0o000, 0o022, 0o077, 0o777]


@pytest.mark.parametrize("op,value,value_two,refused", [
    ("SCMP_CMP_NE", 0o022, 0, [0o000, 0o077, 0o777]),
    ("SCMP_CMP_LT", 0o022, 0, [0o000]),
    ("SCMP_CMP_LE", 0o022, 0, [0o000, 0o022]),
    ("SCMP_CMP_EQ", 0o022, 0, [0o022]),
    ("SCMP_CMP_GE", 0o077, 0, [0o077, 0o777]),
    ("SCMP_CMP_GT", 0o077, 0, [0o777]),
    ("SCMP_CMP_MASKED_EQ", 0o070, 0o070, [0o077, 0o777]),
    ("SCMP_CMP_MASKED_EQ", 0o007, 0o002, [0o022]),
])
def test_operators(op, value, value_two, refused):
    filt = seccomp.prepare(profile(rule("umask", errnoRet=errno.EDOM, args=[
        {"index": 0, "value": value, "valueTwo": value_two, "op": op}])))
    out, _ = run(filt, lambda: [sc("umask", m) == -errno.EDOM for m in PROBES])
    assert out == [m in refused for m in PROBES]


def test_conditions_on_one_argument_match_as_or():
    filt = seccomp.prepare(profile(rule("umask", args=[
        {"index": 0, "value": 0o022, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 0o077, "op": "SCMP_CMP_EQ"}])))
    out, _ = run(filt, lambda: [sc("umask", m) == -errno.EPERM for m in PROBES])
    assert out == [False, True, True, False]


def test_conditions_on_two_arguments_match_as_and():
    # kill(pid, sig): refused only for pid 1 with signal 0
    filt = seccomp.prepare(profile(rule("kill", args=[
        {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}])))
    out, _ = run(filt, lambda: [sc("kill", os.getpid(), 0), sc("kill", 1, 0)])
    assert out == [0, -errno.EPERM]


# --- defaults, architectures, the ENOSYS stub ---------------------------------------

def test_docker_like_profile():
    filt = seccomp.prepare(docker_like())
    assert 'unknown seccomp syscall "mseal" ignored' in filt.warnings
    assert not any('"getcwd"' in w for w in filt.warnings)

    def child():
        return [mkdir_errno("/tmp/seccomp-test-never/x"), sc("unshare", 0), sc("mount", 0, 0, 0),
                sc("personality", 0xFFFFFFFF) >= 0, sc("personality", 0x0400000),
                sc("socket", socket.AF_VSOCK, socket.SOCK_STREAM, 0),
                sc("clone3", 0, 0), sc("pidfd_open", os.getpid(), 0) > 0]

    out, status = run(filt, child)
    assert out == [errno.ENOENT, -errno.EPERM, -errno.EPERM, True, -errno.EPERM,
                   -errno.EPERM, -errno.ENOSYS, True]


def test_default_errno_ret():
    allowed = [n for n in ALLOWED if n != "getcwd"]
    filt = seccomp.prepare(docker_like(default_errno=42, allowed=allowed))

    def child():
        try:
            os.getcwd()
        except OSError as e:
            return e.errno

    assert run(filt, child)[0] == 42


def below_pidfd_open(**more):
    """An allowlist profile naming no syscall numbered pidfd_open or above."""
    top = nr("pidfd_open") - 1
    allowed = [n for n in ALLOWED if 0 <= lib.seccomp_syscall_resolve_name(n.encode()) <= top]
    return profile(rule(allowed, "SCMP_ACT_ALLOW"), default="SCMP_ACT_ERRNO", **more)


def newer_and_older():
    # pidfd_open is newer than the profile; sysfs(3) (count filesystem types) older
    return [sc("pidfd_open", os.getpid(), 0), sc("sysfs", 3)]


@pytest.mark.skipif(not ARCHES, reason="architecture list unknown for this machine")
def test_syscalls_newer_than_the_profile_get_enosys():
    """Above the highest syscall number the profile names: ENOSYS, not the default."""
    out, _ = run(seccomp.prepare(below_pidfd_open(architectures=ARCHES)), newer_and_older)
    assert out == [-errno.ENOSYS, -errno.EPERM]


def test_no_enosys_stub_without_architectures():
    """runc patches only the listed architectures."""
    out, _ = run(seccomp.prepare(below_pidfd_open()), newer_and_older)
    assert out == [-errno.EPERM, -errno.EPERM]


def test_unknown_syscall_names_are_skipped():
    filt = seccomp.prepare(profile(rule(["no_such_syscall", "mkdir", "mkdirat"])))
    assert filt.warnings == ['unknown seccomp syscall "no_such_syscall" ignored']
    assert run(filt, lambda: mkdir_errno("/tmp/seccomp-test-never"))[0] == errno.EPERM


def test_disabled_without_default_action_or_syscalls():
    assert seccomp.prepare({}) is None
    assert seccomp.prepare({"architectures": ARCHES}) is None


# --- flags -------------------------------------------------------------------------

def test_tsync_reaches_every_thread():
    filt = seccomp.prepare(profile(rule("getcwd"), flags=["SECCOMP_FILTER_FLAG_TSYNC"]))
    assert filt.flags == lib.SECCOMP_FILTER_FLAG_TSYNC
    started, done = threading.Event(), threading.Event()

    def before():
        threading.Thread(target=lambda: (started.set(), done.wait()), daemon=True).start()
        started.wait()

    def child():
        modes = []
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/status") as f:
                modes += [line.split()[1] for line in f if line.startswith("Seccomp:")]
        done.set()
        return modes

    assert run(filt, child, before=before)[0] == ["2", "2"]


@pytest.mark.parametrize("flag", ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
def test_flags_accepted(flag):
    if flag not in seccomp.features()["supportedFlags"]:
        pytest.skip(f"{flag} unsupported here")
    filt = seccomp.prepare(profile(rule("getcwd"), flags=[flag]))
    assert run(filt, lambda: status_fields()["Seccomp"])[0] == "2"


# --- notification ------------------------------------------------------------------

def agent_round(tmp_path, config, syscall, answer):
    """Play runtime and agent around a child that loads ``config`` and makes
    ``syscall``: the child hands its listener fd over a socketpair (as the init
    does), send_notify_fd passes it to the agent socket, the agent answers the
    notification with ``answer``.  Returns (agent's state JSON, the child's
    results, the notification's pid and nr)."""
    path = str(tmp_path / "agent.sock")
    config = {**config, "listenerPath": path, "listenerMetadata": "MKNOD=/dev/null"}
    filt = seccomp.prepare(config)
    assert filt.notify
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(path)
    agent.listen(1)
    parent, child_end = socket.socketpair()

    def child(fd):
        cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
        socket.send_fds(child_end, [b"fd"], [fd])
        os.close(fd)
        return [sc(syscall), cloexec]

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            out = run_here(filt, child)
        except BaseException as e:  # noqa: B036
            out = {"error": repr(e)}
        os.write(w, jsonfast.dumps(out).encode())
        os._exit(0)
    os.close(w)
    try:
        _, fds, _, _ = socket.recv_fds(parent, 16, 1)
        assert len(fds) == 1
        state = {"ociVersion": "1.3.0", "id": "seccomp-test", "status": "creating",
                 "pid": pid, "bundle": "/tmp/bundle", "annotations": {"k": "v"}}
        seccomp.send_notify_fd(path, fds[0], state, "MKNOD=/dev/null")
        os.close(fds[0])
        conn, _ = agent.accept()
        msg, agent_fds, _, _ = socket.recv_fds(conn, 65536, 4)
        conn.close()
        assert len(agent_fds) == 1
        listener = agent_fds[0]
        poll = select.poll()
        poll.register(listener)
        assert poll.poll(10000), "no notification within 10 s"
        req = ffi.new("struct seccomp_notif *")
        resp = ffi.new("struct seccomp_notif_resp *")
        assert lib.seccomp_notify_receive(listener, req) == 0
        seen = (req.pid, req.data.nr)
        resp.id = req.id
        resp.val = answer
        assert lib.seccomp_notify_respond(listener, resp) == 0
        os.close(listener)
    finally:
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        agent.close()
        parent.close()
        child_end.close()
    out = jsonfast.loads(data)
    assert "error" not in out, out["error"]
    return jsonfast.loads(msg), out["ok"], seen, pid


def run_here(filt, fn):
    fd = filt.load()
    return {"ok": fn(fd)}


def test_notify(tmp_path):
    config = profile(rule("getppid", "SCMP_ACT_NOTIFY"))
    state, (result, cloexec), (npid, nnr), pid = agent_round(tmp_path, config, "getppid", 4242)
    assert result == 4242
    assert cloexec
    assert (npid, nnr) == (pid, nr("getppid"))
    assert state == {
        "ociVersion": "1.3.0", "fds": ["seccompFd"], "pid": pid, "metadata": "MKNOD=/dev/null",
        "state": {"ociVersion": "1.3.0", "id": "seccomp-test", "status": "creating",
                  "pid": pid, "bundle": "/tmp/bundle", "annotations": {"k": "v"}}}


def test_notify_with_tsync_and_killable_wait(tmp_path):
    flags = [f for f in ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
             if f in seccomp.features()["supportedFlags"]]
    config = profile(rule("getppid", "SCMP_ACT_NOTIFY"), flags=flags)
    _, (result, _), _, _ = agent_round(tmp_path, config, "getppid", 7)
    assert result == 7


def test_send_notify_fd_without_agent(tmp_path):
    r, w = os.pipe()
    try:
        with pytest.raises(SysError) as e:
            seccomp.send_notify_fd(str(tmp_path / "none.sock"), r, {"pid": 1})
        assert str(e.value) == f"connect to seccomp agent {tmp_path}/none.sock: " \
                               "no such file or directory"
    finally:
        os.close(r)
        os.close(w)


# --- errors ------------------------------------------------------------------------

@pytest.mark.parametrize("config,message", [
    (profile(rule("mkdir"), rule("rmdir", "SCMP_ACT_FOO")),
     'linux.seccomp.syscalls[1].action: unknown action "SCMP_ACT_FOO"'),
    (profile(default="SCMP_ACT_NOPE"),
     'linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"'),
    (profile(rule("umask", args=[{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                 {"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}])),
     'linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_ABOUT"'),
    (profile(rule("umask", args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}])),
     "linux.seccomp.syscalls[0].args[0].index: must be an integer from 0 to 5"),
    (profile(rule("umask"), architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]),
     'linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX"'),
    (profile(rule("umask"), flags=["SECCOMP_FILTER_FLAG_FAST"]),
     'linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FAST"'),
    (profile(rule("umask", "SCMP_ACT_KILL", errnoRet=1)),
     "linux.seccomp.syscalls[0].errnoRet: not allowed with SCMP_ACT_KILL"),
    (profile(rule("umask"), defaultErrnoRet=1),
     "linux.seccomp.defaultErrnoRet: not allowed with SCMP_ACT_ALLOW"),
    (profile(rule("umask", errnoRet=1 << 16)),
     "linux.seccomp.syscalls[0].errnoRet: must be an integer from 0 to 65535"),
    (profile(rule([])), "linux.seccomp.syscalls[0].names: must list at least one syscall"),
    (profile(default="SCMP_ACT_NOTIFY", listenerPath="/x"),
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
    (profile(rule(["read", "write"], "SCMP_ACT_NOTIFY"), listenerPath="/x"),
     "linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY cannot be used for the write syscall"),
    (profile(rule("getppid", "SCMP_ACT_NOTIFY")),
     "linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used"),
    (profile(rule("getppid"), listenerMetadata="x"),
     "linux.seccomp.listenerMetadata: must not be set without listenerPath"),
    (profile(rule("getppid"), flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]),
     "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY "
     "rule"),
])
def test_config_errors(config, message):
    with pytest.raises(ConfigError) as e:
        seccomp.prepare(config)
    assert str(e.value) == f"config.json: {message}"


def test_architecture_foreign_to_this_machine():
    foreign = "SCMP_ARCH_S390X" if platform.machine() != "s390x" else "SCMP_ARCH_X86_64"
    with pytest.raises(ConfigError) as e:
        seccomp.prepare(profile(rule("getppid"), architectures=[foreign]))
    assert str(e.value).startswith(f"config.json: linux.seccomp.architectures[0]: {foreign} "
                                   "cannot be used on this machine: ")


# --- features, cache ---------------------------------------------------------------

def test_features():
    f = seccomp.features()
    assert f["enabled"] is True
    assert f["actions"] == sorted([
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY"])
    assert f["operators"] == sorted(["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
                                     "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                     "SCMP_CMP_MASKED_EQ"])
    assert set(ARCHES) <= set(f["archs"]) and f["archs"] == sorted(f["archs"])
    for arch in ARCHES:
        seccomp.prepare(profile(rule("getcwd"), architectures=[arch]))
    assert f["knownFlags"] == ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                               "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    assert set(f["supportedFlags"]) <= set(f["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_TSYNC" in f["supportedFlags"]
    assert seccomp.libseccomp_version().count(".") == 2


def test_cache(tmp_path):
    config = docker_like()
    config["syscalls"][0]["names"] = ALLOWED + ["no_such_syscall"]
    plain = seccomp.prepare(config)
    cache = tmp_path / "cache"
    first = seccomp.prepare(config, cache_dir=str(cache))
    files = os.listdir(cache)
    assert len(files) == 1
    again = seccomp.prepare(config, cache_dir=str(cache))
    assert plain.program == first.program == again.program
    assert plain.warnings == first.warnings == again.warnings
    assert 'unknown seccomp syscall "no_such_syscall" ignored' in again.warnings
    # another profile, another entry; a damaged entry is rebuilt
    other = seccomp.prepare(docker_like(default_errno=38), cache_dir=str(cache))
    assert len(os.listdir(cache)) == 2 and other.program != plain.program
    (cache / files[0]).write_bytes(b"[]\nshort")
    assert seccomp.prepare(config, cache_dir=str(cache)).program == plain.program
    assert run(again, lambda: sc("unshare", 0))[0] == -errno.EPERM


def test_filter_from_plain_values():
    filt = seccomp.prepare(profile(rule("getcwd", errnoRet=42)))
    copy = seccomp.Filter(bytes(filt.program), filt.flags)
    assert run(copy, lambda: sc("getcwd", 0, 0))[0] == -42
