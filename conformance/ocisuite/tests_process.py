"""config.md#configProcess, POSIX/Linux process, user, hostname, domainname."""

import os

from .harness import ConsoleSocket, Skip, TestError, kv, status_fields
from .registry import test

CAP_NAMES = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
             "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
             "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
             "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
             "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
             "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
             "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
             "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
             "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
             "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def capmask(names):
    m = 0
    for n in names:
        m |= 1 << CAP_NAMES.index(n)
    return m


def capnames(mask):
    return [n for i, n in enumerate(CAP_NAMES) if mask >> i & 1]


def status_of(ctx, name, mod, uid=None):
    c = ctx.container(name, args=["/bin/cat", "/proc/self/status"])
    if uid is not None:
        c.config["process"]["user"] = {"uid": uid, "gid": uid}
    mod(c.config)
    return status_fields(c.run()), c


@test("cfg.process.args", "cfg.process.args-path", "cfg.process.env", "cfg.process.cwd")
def t_process_basics(ctx):
    weird = ["two words", "tab\there", "", "ünïcödé", "$HOME", "*"]
    c = ctx.container("args", args=["/probe", "argv"] + weird)
    got = kv(c.run())
    argv = [bytes.fromhex(got.get(f"argv[{i}]", "")).decode(errors="replace")
            for i in range(int(got.get("argc", 0)))]
    ctx.check("cfg.process.args", argv == weird, f"argv[2:] seen: {argv!r}")
    c = ctx.container("path", args=["probe", "argv", "found"])
    c.config["process"]["env"] = ["PATH=/nonexistent-dir:/"]
    r = c.create()
    if not r.ok:
        ctx.fail("cfg.process.args-path", f"args[0]='probe' with PATH=/nonexistent-dir:/: "
                 f"{c.diag(r)[:200]}")
    else:
        c.must_start()
        c.wait()
        ctx.check("cfg.process.args-path", "argv[0]=" + b"found".hex() in c.stdout(),
                  f"output {c.stdout()[:80]!r}")
    env = ["PATH=/usr/bin:/bin", "FOO=bar baz", "EMPTY=", "EQ=a=b=c", "UNICODE=ü"]
    c = ctx.container("env", args=["/usr/bin/env"])
    c.config["process"]["env"] = env
    host = dict(os.environ, CONFORMANCE_LEAK="leaked")
    c.must_create(env=host)
    c.must_start()
    c.wait()
    lines = c.stdout().splitlines()
    missing = [e for e in env if e not in lines]
    extra = [l for l in lines if l not in env]
    leaked = [l for l in lines if l.startswith("CONFORMANCE_LEAK")]
    ctx.check("cfg.process.env", not missing and not leaked,
              f"missing {missing}, leaked from the runtime {leaked}" if missing or leaked
              else "all set" + (f" (runtime added {extra})" if extra else ", nothing added"))
    c = ctx.container("cwd", args=["/bin/sh", "-c", "pwd"])
    os.makedirs(c.rootfs_path("/srv/work dir"))
    c.config["process"]["cwd"] = "/srv/work dir"
    out = c.run().strip()
    ctx.check("cfg.process.cwd", out == "/srv/work dir", f"pwd: {out!r}")


@test("cfg.process.cwd-absolute", "cfg.process.args-nonempty")
def t_process_invalid(ctx):
    c = ctx.container("cwd", args=["true"])
    c.config["process"]["cwd"] = "tmp"
    ctx.expect_create_error("cfg.process.cwd-absolute", c, "with cwd 'tmp'")
    c = ctx.container("args", args=["true"])
    c.config["process"]["args"] = []
    r = c.create()
    if r.ok:
        r2 = c.start()
        ctx.check("cfg.process.args-nonempty", not r2.ok,
                  f"create accepted empty args; start: {r2.brief()}")
    else:
        tr = c.traces()
        ctx.check("cfg.process.args-nonempty", not tr, f"create refused ({r.brief()})"
                  + (f", left {tr}" if tr else ""))


@test("cfg.user.uid", "cfg.user.gid", "cfg.user.additionalGids", "cfg.user.umask")
def t_user(ctx):
    st, c = status_of(ctx, "c", lambda cfg: cfg["process"].__setitem__(
        "user", {"uid": 1000, "gid": 100, "additionalGids": [5, 1000, 4242], "umask": 0o027}))
    ctx.check("cfg.user.uid", st.get("Uid", "").split() == ["1000"] * 4, f"Uid: {st.get('Uid')}")
    ctx.check("cfg.user.gid", st.get("Gid", "").split() == ["100"] * 4, f"Gid: {st.get('Gid')}")
    groups = sorted(int(g) for g in st.get("Groups", "").split())
    ctx.check("cfg.user.additionalGids", set(groups) == {5, 1000, 4242},
              f"Groups: {groups}")
    ctx.check("cfg.user.umask", st.get("Umask") == "0027", f"Umask: {st.get('Umask')}")


@test("cfg.hostname")
def t_hostname(ctx):
    c = ctx.container("c", args=["/bin/hostname"])
    c.config["hostname"] = "conformance-host"
    out = c.run().strip()
    ctx.check("cfg.hostname", out == "conformance-host", f"hostname: {out!r}")


@test("cfg.domainname")
def t_domainname(ctx):
    c = ctx.container("c", args=["/bin/cat", "/proc/sys/kernel/domainname"])
    c.config["domainname"] = "conformance.test"
    r = c.create()
    if not r.ok:
        ctx.fail("cfg.domainname", f"create failed: {c.diag(r)[:200]}")
        return
    c.must_start()
    c.wait()
    out = c.stdout().strip()
    ctx.check("cfg.domainname", out == "conformance.test", f"domainname: {out!r}")


@test("cfg.rlimits.soft", "cfg.rlimits.hard", "cfg.rlimits.getrlimit")
def t_rlimits(ctx):
    want = {"RLIMIT_NOFILE": (7, 512, 4096), "RLIMIT_CORE": (4, 1000, 2000),
            "RLIMIT_MSGQUEUE": (12, 8192, 16384), "RLIMIT_STACK": (3, 4 << 20, 16 << 20)}
    c = ctx.container("c", args=["/probe", "rlimits"])
    c.config["process"]["rlimits"] = [{"type": t, "soft": s, "hard": h}
                                      for t, (_, s, h) in want.items()]
    got = kv(c.run())
    soft_bad, hard_bad, err = [], [], []
    for t, (num, s, h) in want.items():
        v = got.get(f"rlimit{num}", "")
        if v.startswith("error") or not v:
            err.append(t)
            continue
        cur, mx = (int(x) for x in v.split())
        if cur != s:
            soft_bad.append(f"{t} {cur}!={s}")
        if mx != h:
            hard_bad.append(f"{t} {mx}!={h}")
    ctx.check("cfg.rlimits.getrlimit", not err, f"getrlimit failed for {err}" if err else
              "getrlimit works for all configured types")
    ctx.check("cfg.rlimits.soft", not soft_bad, ", ".join(soft_bad) or "all soft limits match")
    ctx.check("cfg.rlimits.hard", not hard_bad, ", ".join(hard_bad) or "all hard limits match")


@test("cfg.rlimits.type-error", "cfg.rlimits.dup")
def t_rlimits_invalid(ctx):
    c = ctx.container("bad", args=["true"])
    c.config["process"]["rlimits"] = [{"type": "RLIMIT_CONFORMANCE", "soft": 1, "hard": 1}]
    ctx.expect_create_error("cfg.rlimits.type-error", c, "with type RLIMIT_CONFORMANCE")
    c = ctx.container("dup", args=["true"])
    c.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                                      {"type": "RLIMIT_NOFILE", "soft": 300, "hard": 400}]
    ctx.expect_create_error("cfg.rlimits.dup", c, "with RLIMIT_NOFILE twice")


@test("cfg.caps.bounding", "cfg.caps.inheritable", "cfg.caps.permitted", "cfg.caps.effective",
      "cfg.caps.ambient")
def t_caps(ctx):
    """Bounding and inheritable survive execve as configured. As root (no file caps) the
    kernel gives the new program permitted = effective = bounding | inheritable, so with
    the usual bounding = permitted = effective they must equal it. As a non-root user,
    ambient caps become the program's permitted and effective sets."""
    bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SYS_CHROOT"]
    inh = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]

    def root_caps(cfg):
        cfg["process"]["capabilities"] = {"bounding": bnd, "permitted": bnd, "effective": bnd,
                                          "inheritable": inh}
    st, _ = status_of(ctx, "root", root_caps)
    got = {k: int(st.get(k, "0"), 16) for k in ("CapBnd", "CapInh", "CapPrm", "CapEff")}
    for req, key, want in (("cfg.caps.bounding", "CapBnd", bnd),
                           ("cfg.caps.inheritable", "CapInh", inh),
                           ("cfg.caps.permitted", "CapPrm", bnd),
                           ("cfg.caps.effective", "CapEff", bnd)):
        ctx.check(req, got[key] == capmask(want),
                  f"{key} {capnames(got[key])} (want {want})")

    def user_caps(cfg):
        cfg["process"]["capabilities"] = {
            "bounding": bnd, "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "ambient": ["CAP_NET_BIND_SERVICE"]}
        cfg["process"]["noNewPrivileges"] = False
    st, _ = status_of(ctx, "user", user_caps, uid=1000)
    amb = int(st.get("CapAmb", "0"), 16)
    eff = int(st.get("CapEff", "0"), 16)
    inh_u = int(st.get("CapInh", "0"), 16)
    want = capmask(["CAP_NET_BIND_SERVICE"])
    ctx.check("cfg.caps.ambient", amb == want and eff == want,
              f"uid 1000: CapAmb {capnames(amb)}, CapEff {capnames(eff)} (want "
              f"CAP_NET_BIND_SERVICE in both)")
    ctx.check("cfg.caps.inheritable", inh_u == capmask(["CAP_NET_BIND_SERVICE", "CAP_KILL"]),
              f"uid 1000: CapInh {capnames(inh_u)}")


@test("cfg.caps.unknown-warn", "cfg.caps.unknown-nofail", "rt.warn.continue")
def t_caps_unknown(ctx):
    c = ctx.container("c", args=["/bin/sh", "-c", "echo ran"])
    caps = c.config["process"]["capabilities"]
    for k in caps:
        caps[k] = caps[k] + ["CAP_CONFORMANCE_UNKNOWN"]
    r = c.create()
    if not r.ok:
        for req in ("cfg.caps.unknown-warn", "cfg.caps.unknown-nofail", "rt.warn.continue"):
            ctx.fail(req, f"create failed: {c.diag(r)[:200]}")
        return
    c.must_start()
    c.wait()
    ran = c.stdout().strip() == "ran"
    ctx.check("cfg.caps.unknown-nofail", ran, "container ran with an unknown capability"
              if ran else f"output {c.stdout()!r}")
    ctx.check("rt.warn.continue", ran, "the operation went on after the warning" if ran else
              "the container did not run")
    text = (c.runtime_log() + c.stderr()).lower()
    warned = "conformance_unknown" in text and ("warn" in text or "unknown" in text)
    # a capability the host cannot grant (outside the suite's own bounding set), if any
    mine = int(status_fields(open("/proc/self/status").read()).get("CapBnd", "0"), 16)
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    missing = [n for i, n in enumerate(CAP_NAMES) if i <= last and not mine >> i & 1]
    if missing:
        g = ctx.container("ungrantable", args=["/bin/sh", "-c", "echo ran"])
        for k in g.config["process"]["capabilities"]:
            g.config["process"]["capabilities"][k] = \
                g.config["process"]["capabilities"][k] + missing[:1]
        r = g.create()
        ran2 = False
        if r.ok:
            g.must_start()
            g.wait()
            ran2 = g.stdout().strip() == "ran"
        ctx.check("cfg.caps.unknown-nofail", ran2,
                  f"container asking for {missing[0]}, which this host cannot grant: "
                  + ("ran" if ran2 else g.diag(r)[:160] if not r.ok else "did not run"))
    if warned:
        ctx.check("cfg.caps.unknown-warn", True, "a warning names the capability")
    else:
        ctx.skip("cfg.caps.unknown-warn", "no warning seen in --log or stderr (the spec does "
                 "not mandate how warnings are exposed)")


@test("cfg.process.noNewPrivileges")
def t_nnp(ctx):
    for val, want in ((True, "1"), (False, "0")):
        st, _ = status_of(ctx, f"nnp{int(val)}",
                          lambda cfg: cfg["process"].__setitem__("noNewPrivileges", val))
        ctx.check("cfg.process.noNewPrivileges", st.get("NoNewPrivs") == want,
                  f"noNewPrivileges={val}: NoNewPrivs {st.get('NoNewPrivs')}")


def set_oom(value):
    def fn():
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    return fn


@test("cfg.process.oom-set", "cfg.process.oom-unset")
def t_oom(ctx):
    c = ctx.container("set", args=["/bin/cat", "/proc/self/oom_score_adj"])
    c.config["process"]["oomScoreAdj"] = 512
    c.must_create(preexec_fn=set_oom(123))
    c.must_start()
    c.wait()
    out = c.stdout().strip()
    ctx.check("cfg.process.oom-set", out == "512", f"oom_score_adj {out!r} (want 512)")
    c = ctx.container("unset", args=["/bin/cat", "/proc/self/oom_score_adj"])
    c.must_create(preexec_fn=set_oom(123))
    c.must_start()
    c.wait()
    out = c.stdout().strip()
    ctx.check("cfg.process.oom-unset", out == "123",
              f"runtime started with 123; container has {out!r}")


SCHED = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_IDLE": 5,
         "SCHED_DEADLINE": 6}


def sched_run(ctx, name, sched, resources=None):
    c = ctx.container(name, args=["/probe", "sched"])
    c.config["process"]["scheduler"] = sched
    if resources:
        c.config["linux"].setdefault("resources", {}).update(resources)
    r = c.create()
    if not r.ok:
        return None, f"create failed: {c.diag(r)[:200]}"
    c.must_start()
    c.wait()
    return kv(c.stdout()), c.stdout()


@test("cfg.process.sched-policy", "cfg.process.sched-nice", "cfg.process.sched-priority",
      "cfg.process.sched-deadline", "cfg.process.sched-flags")
def t_scheduler(ctx):
    got, raw = sched_run(ctx, "batch", {"policy": "SCHED_BATCH", "nice": 7})
    if got is None:
        ctx.fail("cfg.process.sched-policy", raw)
        ctx.fail("cfg.process.sched-nice", raw)
    else:
        ctx.check("cfg.process.sched-policy", got.get("policy") == "3",
                  f"policy {got.get('policy')} (want SCHED_BATCH=3)")
        ctx.check("cfg.process.sched-nice", got.get("nice") == "7", f"nice {got.get('nice')}")
    got, raw = sched_run(ctx, "rr", {"policy": "SCHED_RR", "priority": 10},
                         {"cpu": {"realtimeRuntime": 50000, "realtimePeriod": 1000000}})
    if got is None:
        ctx.fail("cfg.process.sched-priority", raw)
    else:
        ctx.check("cfg.process.sched-priority",
                  got.get("policy") == "2" and got.get("priority") == "10",
                  f"policy {got.get('policy')} priority {got.get('priority')} (want RR=2, 10)")
    dl = {"policy": "SCHED_DEADLINE", "runtime": 1000000, "deadline": 10000000,
          "period": 10000000}
    got, raw = sched_run(ctx, "dl", dl)
    if got is None:
        ctx.fail("cfg.process.sched-deadline", raw)
    else:
        ok = (got.get("policy") == "6" and got.get("runtime") == "1000000"
              and got.get("deadline") == "10000000" and got.get("period") == "10000000")
        ctx.check("cfg.process.sched-deadline", ok,
                  f"policy {got.get('policy')} runtime {got.get('runtime')} deadline "
                  f"{got.get('deadline')} period {got.get('period')}")
    got, raw = sched_run(ctx, "flags", {"policy": "SCHED_BATCH",
                                        "flags": ["SCHED_FLAG_RESET_ON_FORK"]})
    if got is None:
        ctx.fail("cfg.process.sched-flags", raw)
    else:
        ctx.check("cfg.process.sched-flags", got.get("flags") == "1" and got.get("policy") == "3",
                  f"policy {got.get('policy')} flags {got.get('flags')} (want RESET_ON_FORK=1)")


@test("cfg.process.ioPriority")
def t_ioprio(ctx):
    c = ctx.container("c", args=["/probe", "ioprio"])
    c.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    r = c.create()
    if not r.ok:
        ctx.fail("cfg.process.ioPriority", f"create failed: {c.diag(r)[:200]}")
        return
    c.must_start()
    c.wait()
    got = kv(c.stdout())
    ctx.check("cfg.process.ioPriority", got.get("class") == "2" and got.get("level") == "6",
              f"class {got.get('class')} level {got.get('level')} (want BE=2, 6)")


@test("cfg.process.execCPUAffinity")
def t_exec_affinity(ctx):
    raise Skip("applies to processes started by exec, which is not an OCI operation")


@test("cfg.process.apparmorProfile")
def t_apparmor(ctx):
    if not os.path.exists("/sys/kernel/security/apparmor"):
        raise Skip("AppArmor is not enabled on this host")
    raise Skip("AppArmor tests need a loaded profile; none is set up by the suite")


@test("cfg.process.selinuxLabel", "lnx.mountLabel")
def t_selinux(ctx):
    if not os.path.exists("/sys/fs/selinux/enforce"):
        raise Skip("SELinux is not enabled on this host")
    raise Skip("SELinux label tests need a policy; none is set up by the suite")


def _terminal(ctx, name, size=None):
    c = ctx.container(name, args=["/bin/sh", "-c",
                                  "/probe winsize; echo tty=$(readlink /proc/self/fd/0); "
                                  "echo fd0=$(stat -L -c %t:%T /proc/self/fd/0); "
                                  "echo console=$(stat -c %F:%t:%T /dev/console 2>&1); "
                                  "cat /proc/self/mountinfo | grep ' /dev/console ' "
                                  "| sed 's/^/mnt=/'; sleep 0.2"])
    c.config["process"]["terminal"] = True
    if size:
        c.config["process"]["consoleSize"] = size
    sock_path = os.path.join(ctx.dir, f"{name}.sock")
    cs = ConsoleSocket(sock_path)
    ctx.cleanups.append(cs.close)
    r = c.create(console_socket=sock_path)
    if not r.ok:
        raise TestError(f"create with terminal failed: {c.diag(r)}")
    cs.accept()
    c.must_start()
    out = cs.read_all(timeout=10)
    c.wait(10)
    return out.replace("\r", "")


@test("cfg.process.terminal", "cfg.process.consoleSize", "lnx.devices.default.console")
def t_terminal(ctx):
    out = _terminal(ctx, "tty", size={"height": 33, "width": 111})
    got = kv(out)
    isatty = all(got.get(f"isatty{i}") == "1" for i in range(3))
    ctx.check("cfg.process.terminal", isatty and got.get("tty", "").startswith("/dev/pts/"),
              f"isatty 0,1,2: {[got.get(f'isatty{i}') for i in range(3)]}; fd0 -> {got.get('tty')}")
    ctx.check("cfg.process.consoleSize", got.get("rows") == "33" and got.get("cols") == "111",
              f"winsize {got.get('rows')}x{got.get('cols')} (want 33x111)")
    con = got.get("console", "")
    fd0 = got.get("fd0", "")
    mounted = "mnt" in got
    ok = con.startswith("character special file") and con.endswith(":" + fd0) and mounted
    ctx.check("lnx.devices.default.console", ok,
              f"/dev/console {con!r}, pty {fd0!r}, bind-mounted={mounted}")


@test("cfg.process.consoleSize-ignore")
def t_console_size_ignored(ctx):
    c = ctx.container("c", args=["/bin/sh", "-c", "echo ok"])
    c.config["process"]["consoleSize"] = {"height": 10, "width": 10}
    r = c.create()
    if not r.ok:
        ctx.fail("cfg.process.consoleSize-ignore", f"create failed: {c.diag(r)[:200]}")
        return
    c.must_start()
    c.wait()
    ctx.check("cfg.process.consoleSize-ignore", c.stdout().strip() == "ok",
              f"output {c.stdout()!r}")
