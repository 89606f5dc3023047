"""config-linux.md#configLinuxSeccomp and #containerprocessstate.

The probe calls raw syscalls (umask takes one integer argument we choose and never
fails, which makes it the test subject for rules, actions and argument operators)."""

import errno
import fcntl
import json
import os
import select
import socket
import struct
import threading
import time

from .harness import TestError, base_config
from .registry import test

SIGSYS_STATUS = "159"      # 128 + SIGSYS, as the shell reports a SIGSYS death

# a broad allow list for default-deny filters: what a static probe, busybox sh and the
# runtimes' last steps before execve need.  getcwd is deliberately absent.
ALLOW = """accept4 access arch_prctl bind brk capget capset chdir chmod chown clock_getres
clock_gettime clock_nanosleep clone clone3 close close_range connect dup dup2 dup3 epoll_create1
epoll_ctl epoll_pwait epoll_wait eventfd2 execve execveat exit exit_group faccessat faccessat2
fadvise64 fchdir fchmod fchmodat fchown fchownat fcntl fdatasync flock fork fstat fstatfs fsync
ftruncate futex getdents64 getegid geteuid getgid getgroups getitimer getpeername getpgid
getpgrp getpid getppid getpriority getrandom getresgid getresuid getrlimit getrusage getsid
getsockname getsockopt gettid gettimeofday getuid getxattr ioctl kill lgetxattr link linkat
listen lseek lstat madvise membarrier mkdir mkdirat mmap mprotect mremap munmap nanosleep
newfstatat open openat openat2 pipe pipe2 poll ppoll prctl pread64 preadv prlimit64 pselect6
pwrite64 pwritev read readlink readlinkat readv recvfrom recvmsg rename renameat renameat2
restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait sched_getaffinity sched_yield seccomp select
sendmsg sendto set_robust_list set_tid_address setgid setgroups setitimer setpgid setresgid
setresuid setsid setsockopt setuid shutdown sigaltstack socket socketpair stat statfs statx
symlink symlinkat sysinfo tgkill time timer_create timer_delete timer_settime tkill umask
uname unlink unlinkat utimensat vfork wait4 waitid write writev""".split()


def seccomp_run(ctx, name, seccomp, script=None, args=None, timeout=15):
    c = ctx.container(name, config=base_config(args or ["/bin/sh", "-c", script]))
    c.config["linux"]["seccomp"] = seccomp
    r = c.create()
    if not r.ok:
        return None, c.diag(r), c
    c.must_start()
    c.wait(timeout)
    return c.stdout(), "", c


def allow_default(rules):
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": rules}


def lines_kv(out):
    """probe outputs, in order: list of dicts."""
    res = []
    for line in out.splitlines():
        if line.startswith("ret="):
            res.append(dict(p.split("=", 1) for p in line.split()))
        elif line.startswith("status="):
            res.append({"status": line.split("=", 1)[1]})
    return res


@test("lnx.seccomp.rule", "lnx.seccomp.default-action", "lnx.seccomp.errnoRet",
      "lnx.seccomp.action.errno")
def t_seccomp_basic(ctx):
    sc = allow_default([{"names": ["umask"], "action": "SCMP_ACT_ERRNO"},
                        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}])
    out, diag, _ = seccomp_run(ctx, "c", sc, "/probe umask 18; /probe sys getcwd; "
                                             "/probe sys getppid")
    if out is None:
        for q in ("lnx.seccomp.rule", "lnx.seccomp.default-action", "lnx.seccomp.errnoRet",
                  "lnx.seccomp.action.errno"):
            ctx.fail(q, f"create failed: {diag[:200]}")
        return
    r = lines_kv(out)
    if len(r) != 3:
        raise TestError(f"unexpected probe output {out!r}")
    um, cwd, ppid = r
    ctx.check("lnx.seccomp.rule", um.get("errno") == "1", f"umask: {um}")
    ctx.check("lnx.seccomp.action.errno", um.get("errno") == "1" and cwd.get("errno") == "18",
              f"umask {um}, getcwd {cwd}")
    ctx.check("lnx.seccomp.errnoRet", um.get("errno") == "1" and cwd.get("errno") == "18",
              f"default EPERM: {um.get('errno')}; errnoRet 18: {cwd.get('errno')}")
    ctx.check("lnx.seccomp.default-action", ppid.get("errno") == "0",
              f"getppid under default ALLOW: {ppid}")


@test("lnx.seccomp.defaultErrnoRet", "lnx.seccomp.action.allow")
def t_seccomp_default_errno(ctx):
    sc = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 95,
          "architectures": ["SCMP_ARCH_X86_64"],
          "syscalls": [{"names": ALLOW, "action": "SCMP_ACT_ALLOW"}]}
    out, diag, _ = seccomp_run(ctx, "c", sc, "/probe sys getcwd; /probe sys getppid")
    if out is None:
        ctx.fail("lnx.seccomp.defaultErrnoRet", f"create failed: {diag[:200]}")
        ctx.fail("lnx.seccomp.action.allow", f"create failed: {diag[:200]}")
        return
    r = lines_kv(out)
    cwd = r[0] if r else {}
    ppid = r[1] if len(r) > 1 else {}
    ctx.check("lnx.seccomp.defaultErrnoRet", cwd.get("errno") == "95",
              f"getcwd (not allowed) under default ERRNO/95: {cwd or out[:100]!r}")
    ctx.check("lnx.seccomp.action.allow", ppid.get("errno") == "0",
              f"getppid (allowed): {ppid or out[:100]!r}")


@test("lnx.seccomp.errno-unsupported", "lnx.seccomp.names-nonempty")
def t_seccomp_invalid(ctx):
    c = ctx.container("kill-errno", args=["true"])
    c.config["linux"]["seccomp"] = allow_default([{"names": ["umask"], "action": "SCMP_ACT_KILL",
                                                   "errnoRet": 5}])
    ctx.expect_create_error("lnx.seccomp.errno-unsupported", c, "with errnoRet on SCMP_ACT_KILL")
    c = ctx.container("empty-names", args=["true"])
    c.config["linux"]["seccomp"] = allow_default([{"names": [], "action": "SCMP_ACT_ERRNO"}])
    ctx.expect_create_error("lnx.seccomp.names-nonempty", c, "with a rule without names")


@test("lnx.seccomp.arch")
def t_seccomp_arch(ctx):
    sc = allow_default([{"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33}])
    sc["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    # i386 umask is syscall 60; through int 0x80 the kernel sees AUDIT_ARCH_I386
    out, diag, _ = seccomp_run(ctx, "c", sc, "/probe umask 18; /probe i386 60 18; echo status=$?")
    if out is None:
        ctx.fail("lnx.seccomp.arch", f"create failed: {diag[:200]}")
        return
    ok = "ret=-33" in out and "errno=33" in out
    ctx.check("lnx.seccomp.arch", ok, f"x86_64 and i386 umask: {out.strip()!r}")


@test("lnx.seccomp.flags")
def t_seccomp_flags(ctx):
    bad = []
    for flag in ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                 "SECCOMP_FILTER_FLAG_SPEC_ALLOW"):
        sc = allow_default([{"names": ["umask"], "action": "SCMP_ACT_ERRNO"}])
        sc["flags"] = [flag]
        out, diag, _ = seccomp_run(ctx, flag.split("_")[-1].lower(), sc, "/probe umask 18")
        if out is None:
            bad.append(f"{flag}: create failed: {diag[:100]}")
        elif "errno=1" not in out:
            bad.append(f"{flag}: filter not in force ({out.strip()!r})")
    ctx.check("lnx.seccomp.flags", not bad, "; ".join(bad) or
              "TSYNC, LOG and SPEC_ALLOW accepted with the filter in force (their own effects "
              "are not observable on this host)")


ACTIONS = {"kill": ("SCMP_ACT_KILL", lambda r: r.get("status") == SIGSYS_STATUS),
           "kill-process": ("SCMP_ACT_KILL_PROCESS",
                            lambda r: r.get("status") == SIGSYS_STATUS),
           "kill-thread": ("SCMP_ACT_KILL_THREAD", lambda r: r.get("status") == SIGSYS_STATUS),
           "trap": ("SCMP_ACT_TRAP", lambda r: r.get("status") == SIGSYS_STATUS),
           "trace": ("SCMP_ACT_TRACE", lambda r: r.get("errno") == "38"),
           "log": ("SCMP_ACT_LOG", lambda r: r.get("errno") == "0" and r.get("ret") == "18")}


def _action(ctx, short):
    action, pred = ACTIONS[short]
    script = "/probe umask 18 > /tmp/r 2>&1; echo status=$?; cat /tmp/r"
    out, diag, _ = seccomp_run(ctx, "c", allow_default([{"names": ["umask"],
                                                         "action": action}]), script)
    req = f"lnx.seccomp.action.{short}"
    if out is None:
        ctx.fail(req, f"create failed: {diag[:200]}")
        return
    st = {}
    for line in out.splitlines():
        if line.startswith("status="):
            st["status"] = line.split("=", 1)[1]
        elif line.startswith("ret="):
            st.update(dict(p.split("=", 1) for p in line.split()))
    if short in ("trace", "log") and st.get("status") != "0":
        ctx.fail(req, f"probe died: {st}")
        return
    ctx.check(req, bool(pred(st)), f"{action} on umask: {st}")


def _make_action_test(short):
    def fn(ctx):
        _action(ctx, short)
    fn.__name__ = f"t_seccomp_action_{short.replace('-', '_')}"
    return fn


for _a in ACTIONS:
    test(f"lnx.seccomp.action.{_a}")(_make_action_test(_a))


VALUES = (0, 18, 23, 63)
OPS = {"ne": ("SCMP_CMP_NE", 23, None, {0, 18, 63}),
       "lt": ("SCMP_CMP_LT", 23, None, {0, 18}),
       "le": ("SCMP_CMP_LE", 23, None, {0, 18, 23}),
       "eq": ("SCMP_CMP_EQ", 23, None, {23}),
       "ge": ("SCMP_CMP_GE", 23, None, {23, 63}),
       "gt": ("SCMP_CMP_GT", 23, None, {63}),
       "masked-eq": ("SCMP_CMP_MASKED_EQ", 0o070, 0o020, {18, 23})}


def _op(ctx, short):
    op, value, two, matching = OPS[short]
    arg = {"index": 0, "value": value, "op": op}
    if two is not None:
        arg["valueTwo"] = two
    rule = {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33, "args": [arg]}
    script = "; ".join(f"/probe umask {v}" for v in VALUES)
    out, diag, _ = seccomp_run(ctx, "c", allow_default([rule]), script)
    req = f"lnx.seccomp.op.{short}"
    if out is None:
        ctx.fail(req, f"create failed: {diag[:200]}")
        return
    r = lines_kv(out)
    blocked = {v for v, x in zip(VALUES, r) if x.get("errno") == "33"}
    ctx.check(req, blocked == matching and len(r) == len(VALUES),
              f"{op} {value}{'/' + str(two) if two is not None else ''}: blocked umask "
              f"{sorted(blocked)} of {list(VALUES)} (want {sorted(matching)})")


def _make_op_test(short):
    def fn(ctx):
        _op(ctx, short)
    fn.__name__ = f"t_seccomp_op_{short.replace('-', '_')}"
    return fn


for _o in OPS:
    test(f"lnx.seccomp.op.{_o}")(_make_op_test(_o))


# ---------------------------------------------------------------- seccomp agent

NOTIF_SIZE = 80
NOTIF_RECV = 0xC0000000 | (NOTIF_SIZE << 16) | (ord("!") << 8) | 0
NOTIF_SEND = 0xC0000000 | (24 << 16) | (ord("!") << 8) | 1


class Agent:
    """A seccomp agent on a unix socket: records what the runtime sends, then answers
    every notification with -ENOTBLK (15)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.conns = []          # [{"chunks": [(bytes, nfds)], "eof": bool}]
        self.fds = []
        self.answered = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                self._serve_notifications(0)
                continue
            except OSError:
                return
            rec = {"chunks": [], "eof": False}
            self.conns.append(rec)
            conn.settimeout(5)
            try:
                while True:
                    data, anc, flags, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
                    fds = []
                    for level, typ, payload in anc:
                        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                            n = len(payload) // 4
                            fds += list(struct.unpack(f"{n}i", payload[:n * 4]))
                    if not data and not fds:
                        rec["eof"] = True
                        break
                    rec["chunks"].append((data, len(fds)))
                    self.fds += fds
            except (socket.timeout, OSError):
                pass
            finally:
                conn.close()
            self._serve_notifications(0)

    def _serve_notifications(self, timeout):
        for fd in list(self.fds):
            while not self.stop.is_set():
                p = select.poll()
                p.register(fd, select.POLLIN)
                try:
                    ev = p.poll(timeout * 1000)
                except OSError:
                    break
                if not ev:
                    break
                if ev[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    self.fds.remove(fd)      # no task uses the filter any more
                    os.close(fd)
                    break
                buf = bytearray(NOTIF_SIZE)
                try:
                    fcntl.ioctl(fd, NOTIF_RECV, buf, True)
                except OSError:
                    break
                nid = struct.unpack_from("<Q", buf, 0)[0]
                resp = struct.pack("<QqiI", nid, 0, -errno.ENOTBLK, 0)
                try:
                    fcntl.ioctl(fd, NOTIF_SEND, bytearray(resp), True)
                    self.answered += 1
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass


def notify_seccomp(agent_path, metadata="conformance-meta"):
    sc = allow_default([{"names": ["umask"], "action": "SCMP_ACT_NOTIFY"}])
    sc["listenerPath"] = agent_path
    if metadata is not None:
        sc["listenerMetadata"] = metadata
    return sc


@test("lnx.seccomp.action.notify", "lnx.seccomp.listener.send",
      "lnx.seccomp.listener.one-per-conn", "lnx.seccomp.state.format",
      "lnx.seccomp.state.fds-first")
def t_seccomp_notify(ctx):
    path = os.path.join(ctx.dir, "agent.sock")
    agent = Agent(path)
    ctx.cleanups.append(agent.close)
    c = ctx.container("c", args=["/probe", "umask", "18"])
    c.config["linux"]["seccomp"] = notify_seccomp(path)
    r = c.create()
    if not r.ok:
        for q in ("lnx.seccomp.action.notify", "lnx.seccomp.listener.send",
                  "lnx.seccomp.listener.one-per-conn", "lnx.seccomp.state.format",
                  "lnx.seccomp.state.fds-first"):
            ctx.fail(q, f"create failed: {c.diag(r)[:200]}")
        return
    c.must_start()
    c.wait(15)
    out = c.stdout().strip()
    time.sleep(0.1)
    conns = list(agent.conns)
    ctx.check("lnx.seccomp.action.notify", "errno=15" in out and agent.answered >= 1,
              f"umask under NOTIFY answered -ENOTBLK by the agent: {out!r}, "
              f"{agent.answered} notification(s) handled")
    ctx.check("lnx.seccomp.listener.send", len(conns) >= 1 and any(ch for cn in conns
                                                                    for ch in cn["chunks"]),
              f"{len(conns)} connection(s) to listenerPath")
    docs, problems = [], []
    for cn in conns:
        data = b"".join(d for d, _ in cn["chunks"])
        try:
            doc = json.loads(data.decode())
            docs.append(doc)
        except ValueError:
            problems.append(f"not exactly one JSON document: {data[:80]!r}")
        if not cn["eof"]:
            problems.append("connection not closed after the state")
    ctx.check("lnx.seccomp.listener.one-per-conn", conns and not problems,
              "; ".join(problems) or f"{len(conns)} connection(s), one state each, then closed")
    if not docs:
        ctx.fail("lnx.seccomp.state.format", "no state received")
        ctx.fail("lnx.seccomp.state.fds-first", "no state received")
        return
    doc = docs[0]
    nfds = sum(n for _, n in conns[0]["chunks"])
    st = doc.get("state") if isinstance(doc.get("state"), dict) else {}
    fmt = []
    if not isinstance(doc.get("ociVersion"), str):
        fmt.append("ociVersion missing")
    if doc.get("fds") != ["seccompFd"]:
        fmt.append(f"fds={doc.get('fds')!r}")
    if not isinstance(doc.get("pid"), int):
        fmt.append(f"pid={doc.get('pid')!r}")
    if doc.get("metadata") != "conformance-meta":
        fmt.append(f"metadata={doc.get('metadata')!r}")
    if st.get("id") != c.id:
        fmt.append(f"state.id={st.get('id')!r}")
    if nfds != len(doc.get("fds") or []):
        fmt.append(f"{nfds} fd(s) by SCM_RIGHTS for fds={doc.get('fds')!r}")
    ctx.check("lnx.seccomp.state.format", not fmt, "; ".join(fmt) or
              f"ociVersion, fds, pid, metadata, state(status={st.get('status')}) and 1 fd")
    first = conns[0]["chunks"][0][1] if conns[0]["chunks"] else 0
    ctx.check("lnx.seccomp.state.fds-first", first == nfds and nfds > 0,
              f"{first} of {nfds} fd(s) came with the first message")


@test("lnx.seccomp.listener.fail", "lnx.seccomp.listener.metadata-needs-path")
def t_seccomp_listener_invalid(ctx):
    c = ctx.container("nosock", args=["true"])
    c.config["linux"]["seccomp"] = notify_seccomp(os.path.join(ctx.dir, "no-such.sock"))
    ctx.expect_create_error("lnx.seccomp.listener.fail", c, "with listenerPath that nobody serves")
    c = ctx.container("meta", args=["true"])
    sc = allow_default([{"names": ["umask"], "action": "SCMP_ACT_ERRNO"}])
    sc["listenerMetadata"] = "orphan"
    c.config["linux"]["seccomp"] = sc
    ctx.expect_create_error("lnx.seccomp.listener.metadata-needs-path", c,
                            "with listenerMetadata but no listenerPath")
