"""Hooks: config.md#configHooks and the hook steps of runtime.md#runtimeLifecycle.

The hooks are shell scripts run by the host /bin/sh (or, for startContainer, by the
container's busybox sh) that record their argv, env, stdin state, namespaces and what
they could see of the container process (harness.HOOK_SCRIPT).
"""

import os
import time

from .harness import (Hooks, TestError, base_config, parse_mountinfo, pid_alive, wait_for,
                      write)
from .registry import test

RUNTIME_NS = ("net", "uts", "ipc", "pid", "user", "cgroup")   # mnt: crun's wrapper has its own
CONTAINER_NS = ("mnt", "net", "uts", "ipc", "pid")
KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")
SHORT = {"prestart": "pre", "createRuntime": "cr", "createContainer": "cc",
         "startContainer": "sc", "poststart": "ps", "poststop": "pst"}

PROGRAM = ("if [ -e /rec/sc1/done ]; then echo sc-before=yes; else echo sc-before=no; fi; "
           "echo started >> /shared/marker; "
           "while [ ! -e /shared/stop ]; do sleep 0.05; done")


def host_env():
    env = dict(os.environ)
    env["CONFORMANCE_LEAK"] = "must-not-reach-hooks"
    return env


@test("rt.lc.prestart", "rt.lc.createRuntime", "rt.lc.createContainer", "rt.lc.startContainer",
      "rt.lc.poststart", "rt.lc.poststop", "cfg.hooks.order", "cfg.hooks.state-stdin",
      "cfg.hooks.args", "cfg.hooks.env",
      "cfg.hooks.prestart.resolve", "cfg.hooks.prestart.ns", "cfg.hooks.prestart.when",
      "cfg.hooks.prestart.before-createRuntime",
      "cfg.hooks.createRuntime.resolve", "cfg.hooks.createRuntime.ns",
      "cfg.hooks.createRuntime.when",
      "cfg.hooks.createContainer.resolve", "cfg.hooks.createContainer.ns",
      "cfg.hooks.createContainer.when", "cfg.hooks.createContainer.after-createRuntime",
      "cfg.hooks.startContainer.resolve", "cfg.hooks.startContainer.ns",
      "cfg.hooks.startContainer.when",
      "cfg.hooks.poststart.resolve", "cfg.hooks.poststart.ns", "cfg.hooks.poststart.when",
      "cfg.hooks.poststop.resolve", "cfg.hooks.poststop.ns", "cfg.hooks.poststop.when",
      "rt.state.pid-hook-runtime", "rt.state.pid-hook-container")
def t_hooks(ctx):
    """Two hooks of every kind on one container, through the whole lifecycle."""
    c = ctx.container("c", config=base_config(["/bin/sh", "-c", PROGRAM]))
    shared = ctx.shared(c)
    os.makedirs(c.rootfs_path("/mnt/hookcheck"))
    c.config["mounts"].append({"destination": "/mnt/hookcheck", "type": "tmpfs",
                               "source": "tmpfs", "options": ["size=1m"]})
    h = Hooks(ctx, c)
    rec = h.reader
    pids_dir = "/sys/fs/cgroup/pids" + c.cgpath
    for kind in KINDS:
        for i in (1, 2):
            name = f"{SHORT[kind]}{i}"
            kw = {"in_container": kind == "startContainer"}
            if kind == "poststop":
                kw["check_path"] = pids_dir
            h.add(kind, name, **kw)
    # args/env probe on the first prestart hook: busybox dispatches on argv[0], so the
    # hook only runs if args[0] ("sh") reached it.
    pre1 = c.config["hooks"]["prestart"][0]
    pre1["path"] = "/bin/busybox"
    pre1["args"] = ["sh", h.script, "pre1", "two words", "x"]
    pre1["env"] = pre1["env"] + ["FOO=bar baz"]
    env = host_env()

    c.must_create(env=env)
    after_create = rec.order()
    pid = c.pid
    cns = {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in CONTAINER_NS}
    r = c.start(env=env)
    after_start = rec.order()
    ps_done = all(rec.get(n, "done") for n in ("ps1", "ps2"))
    if not r.ok:
        raise TestError(f"start failed: {c.diag(r)}")
    wait_for(lambda: os.path.exists(os.path.join(shared, "marker")), 5)
    write(os.path.join(shared, "stop"), "")
    c.wait(10)
    out = c.stdout()
    r = c.delete(env=env)
    after_delete = rec.order()
    pst_done = all(rec.get(n, "done") for n in ("pst1", "pst2"))
    if not r.ok:
        raise TestError(f"delete failed: {c.diag(r)}")

    names = {k: [f"{SHORT[k]}1", f"{SHORT[k]}2"] for k in KINDS}
    order = after_delete

    def pos(n):
        return order.index(n) if n in order else None

    # invoked
    for kind in KINDS:
        ran = [n for n in names[kind] if rec.ran(n)]
        ctx.check(f"rt.lc.{kind}", len(ran) == 2, f"ran: {ran}")
    # order within a kind
    bad = [k for k in KINDS if None not in (pos(names[k][0]), pos(names[k][1]))
           and pos(names[k][0]) > pos(names[k][1])]
    missing = [n for k in KINDS for n in names[k] if pos(n) is None]
    ctx.check("cfg.hooks.order", not bad and not missing,
              f"order {order}" + (f"; out of order: {bad}" if bad else "")
              + (f"; missing {missing}" if missing else ""))
    # across kinds
    pre_last = max([pos(n) for n in names["prestart"] if pos(n) is not None], default=None)
    cr = [pos(n) for n in names["createRuntime"] if pos(n) is not None]
    cc = [pos(n) for n in names["createContainer"] if pos(n) is not None]
    ctx.check("cfg.hooks.prestart.before-createRuntime",
              pre_last is not None and cr and pre_last < min(cr), f"order {order}")
    ctx.check("cfg.hooks.createContainer.after-createRuntime",
              cr and cc and max(cr) < min(cc), f"order {order}")
    # state on stdin
    probs = []
    for n in order:
        st = rec.state(n)
        if not isinstance(st, dict) or st.get("id") != c.id or "status" not in st \
                or "ociVersion" not in st:
            probs.append(f"{n}: {str(st)[:80]}")
        elif st.get("bundle") != os.path.realpath(c.bundle):
            probs.append(f"{n}: bundle {st.get('bundle')!r}")
    ctx.check("cfg.hooks.state-stdin", not probs and len(order) == 12,
              "; ".join(probs) or f"{len(order)} hooks got a state with the right id and bundle")
    # args and env (pre1)
    argv = rec.argv("pre1")
    ctx.check("cfg.hooks.args", rec.ran("pre1") and argv[1:] == ["pre1", "two words", "x"],
              f"argv[0] 'sh' honoured (busybox ran as sh); $@={argv[1:]}" if rec.ran("pre1")
              else "busybox hook with args[0]='sh' did not run")
    envs = set(rec.env("pre1")) - {e for e in rec.env("pre1")
                                   if e.split("=")[0] in ("PWD", "SHLVL", "OLDPWD", "_")}
    want = set(pre1["env"])
    ctx.check("cfg.hooks.env", rec.ran("pre1") and envs == want,
              f"extra {sorted(envs - want)}, missing {sorted(want - envs)}" if envs != want
              else "environment exactly as configured")
    # namespaces
    for kind in KINDS:
        req = f"cfg.hooks.{kind}.ns"
        for n in names[kind]:
            if not rec.ran(n):
                ctx.fail(req, f"{n} did not run")
                continue
            ns = rec.ns(n)
            if kind in ("createContainer", "startContainer"):
                diff = [k for k in CONTAINER_NS if ns.get(k) != cns[k]]
                ctx.check(req, not diff, f"{n} not in the container's {diff} namespaces"
                          if diff else f"{n} in the container's {','.join(CONTAINER_NS)}")
            else:
                diff = [k for k in RUNTIME_NS if ns.get(k) != ctx.run.host_ns.get(k)]
                ctx.check(req, not diff, f"{n} not in the runtime's {diff} namespaces"
                          if diff else f"{n} in the runtime's {','.join(RUNTIME_NS)}")
    # path resolution: host script path is absent from the rootfs, the container script
    # path is absent from the host, so running at all proves where the path resolved
    assert not os.path.exists(c.rootfs_path(h.script))
    assert not os.path.exists("/conformance-hooks/hook.sh")
    for kind in KINDS:
        ran = all(rec.ran(n) for n in names[kind])
        where = "container" if kind == "startContainer" else "runtime"
        ctx.check(f"cfg.hooks.{kind}.resolve", ran,
                  f"path only valid in the {where} namespace {'ran' if ran else 'did not run'}")
    # when: create-time hooks
    for kind in ("prestart", "createRuntime", "createContainer"):
        req = f"cfg.hooks.{kind}.when"
        for n in names[kind]:
            if n not in after_create:
                ctx.fail(req, f"{n} had not run when create returned")
                continue
            pns = dict(l.split(" ", 1) for l in (rec.get(n, "pid-ns") or "").splitlines()
                       if " " in l)
            if kind == "createContainer":
                prepivot = not rec.get(n, "self-root-marker")
                mi = parse_mountinfo(rec.get(n, "self-mountinfo"))
            else:
                prepivot = rec.get(n, "pid") is not None and not rec.get(n, "pid-root-marker")
                mi = parse_mountinfo(rec.get(n, "pid-mountinfo"))
            made_ns = pns.get("net") not in (None, "", ctx.run.host_ns["net"]) \
                if kind != "createContainer" else rec.ns(n).get("net") != ctx.run.host_ns["net"]
            mounted = any(m["mountpoint"].endswith("/mnt/hookcheck") for m in mi)
            problems = []
            if not made_ns:
                problems.append("container namespaces not yet created")
            if not prepivot:
                problems.append("pivot_root already done")
            if kind != "prestart" and not mounted:
                problems.append("mounts not yet made")
            ctx.check(req, not problems, f"{n}: " + ("; ".join(problems) or
                      "during create, namespaces made, mounts made, before pivot_root"))
    # startContainer: during start, before the program
    sc_in_create = [n for n in names["startContainer"] if n in after_create]
    sc_in_start = [n for n in names["startContainer"] if n in after_start]
    ctx.check("cfg.hooks.startContainer.when",
              not sc_in_create and len(sc_in_start) == 2 and "sc-before=yes" in out,
              f"ran during create: {sc_in_create}; ran by the end of start: {sc_in_start}; "
              f"program saw the hook's record: {'sc-before=yes' in out}")
    # poststart: after the program is executed, before start returns
    cmds = {n: (rec.get(n, "pid-cmdline") or "").strip() for n in names["poststart"]}
    ps_in_create = [n for n in names["poststart"] if n in after_create]
    ok = ps_done and not ps_in_create and all(v.startswith("/bin/sh -c") for v in cmds.values())
    ctx.check("cfg.hooks.poststart.when", ok,
              f"ran during create: {ps_in_create}; finished before start returned: {ps_done}; "
              f"container process cmdline seen by the hooks: {cmds}")
    # poststop: after the container is deleted, before delete returns
    gone = {n: (rec.get(n, "check-path") or "").strip() for n in names["poststop"]}
    ok = pst_done and all(v == "no" for v in gone.values()) and \
        not any(n in after_start for n in names["poststop"])
    ctx.check("cfg.hooks.poststop.when", ok,
              f"finished before delete returned: {pst_done}; container cgroup existed at hook "
              f"time: {gone}")
    # pid as seen by whom
    bad = []
    for n in names["prestart"] + names["createRuntime"] + names["poststart"]:
        st = rec.state(n) or {}
        if st.get("pid") != pid:
            bad.append(f"{n}: {st.get('pid')}")
    ctx.check("rt.state.pid-hook-runtime", not bad,
              f"runtime pid {pid}; hooks got {bad}" if bad else f"all got {pid}")
    bad = []
    for n in names["createContainer"] + names["startContainer"]:
        st = rec.state(n) or {}
        if st.get("pid") != 1:
            bad.append(f"{n}: {st.get('pid')}")
    ctx.check("rt.state.pid-hook-container", not bad,
              f"container sees its process as pid 1; hooks got {bad}" if bad else "all got 1")


def failing_hook_case(ctx, kind, name):
    c = ctx.container(name, config=base_config(["/bin/sh", "-c",
                                                "echo ran >> /shared/marker; sleep 30"]))
    shared = ctx.shared(c)
    h = Hooks(ctx, c)
    h.add(kind, f"{name}-fail", exit=1, in_container=kind == "startContainer")
    h.add("poststop", f"{name}-poststop")
    return c, shared, h


@test("rt.lc.prestart-fail", "rt.lc.createRuntime-fail", "rt.lc.createContainer-fail",
      "rt.lc.hookfail-poststop")
def t_hooks_create_fail(ctx):
    for kind in ("prestart", "createRuntime", "createContainer"):
        c, shared, h = failing_hook_case(ctx, kind, SHORT[kind])
        r = c.create()
        if r.ok:
            ctx.fail(f"rt.lc.{kind}-fail", "create succeeded although the hook exited 1")
            continue
        tr = c.traces()
        ran = h.reader.ran(f"{SHORT[kind]}-fail")
        ctx.check(f"rt.lc.{kind}-fail", ran and not tr,
                  f"hook ran={ran}; create: {r.brief()}; left: {tr or 'nothing'}")
        if kind == "createRuntime":
            ps = h.reader.ran(f"{SHORT[kind]}-poststop")
            ctx.check("rt.lc.hookfail-poststop", ps and not tr,
                      f"poststop ran after the failed createRuntime: {ps}")


@test("rt.lc.startContainer-fail", "rt.lc.poststart-fail")
def t_hooks_start_fail(ctx):
    for kind in ("startContainer", "poststart"):
        c, shared, h = failing_hook_case(ctx, kind, SHORT[kind])
        r = c.create()
        if not r.ok:
            ran = h.reader.ran(f"{SHORT[kind]}-fail")
            ctx.fail(f"rt.lc.{kind}-fail", f"create failed ({c.diag(r)[:150]}); the {kind} "
                     f"hook {'ran during create' if ran else 'did not run'}")
            continue
        pid = c.pid
        r = c.start()
        dead = wait_for(lambda: not pid_alive(pid), 5)
        ran_prog = os.path.exists(os.path.join(shared, "marker"))
        cg = [d for d in ("/sys/fs/cgroup/pids" + c.cgpath, "/sys/fs/cgroup/memory" + c.cgpath)
              if os.path.isdir(d)]
        problems = []
        if r.ok:
            problems.append("start succeeded")
        if not dead:
            problems.append("container process still alive")
        if kind == "startContainer" and ran_prog:
            problems.append("the user program ran")
        if cg:
            problems.append(f"not destroyed: cgroup {cg[0]} remains")
        if not h.reader.ran(f"{SHORT[kind]}-fail"):
            problems.append("the failing hook never ran")
        ctx.check(f"rt.lc.{kind}-fail", not problems,
                  "; ".join(problems) or f"start failed ({r.brief()}), container stopped and "
                  "destroyed")


@test("rt.lc.poststop-fail")
def t_hooks_poststop_fail(ctx):
    c = ctx.container("c", args=["true"])
    h = Hooks(ctx, c)
    h.add("poststop", "pst-fail", exit=1)
    h.add("poststop", "pst-after")
    c.run()
    r = c.delete()
    tr = c.traces()
    after = h.reader.ran("pst-after")
    ctx.check("rt.lc.poststop-fail", r.ok and after and not tr,
              f"delete: {r.brief()}; later poststop ran={after}; left={tr or 'nothing'}")


@test("cfg.hooks.timeout", "cfg.hooks.timeout-positive", "cfg.hooks.path-absolute")
def t_hooks_invalid(ctx):
    c = ctx.container("slow", args=["true"])
    h = Hooks(ctx, c)
    h.add("createRuntime", "slow", sleep=30, timeout=1)
    t0 = time.monotonic()
    r = c.create(timeout=60)
    dt = time.monotonic() - t0
    tr = c.traces()
    ctx.check("cfg.hooks.timeout", not r.ok and dt < 15 and not tr,
              f"hook sleeping 30s with timeout 1: create {r.brief()} after {dt:.1f}s; "
              f"left: {tr or 'nothing'}")
    c = ctx.container("zero", args=["true"])
    h = Hooks(ctx, c)
    h.add("createRuntime", "zero", timeout=0)
    ctx.expect_create_error("cfg.hooks.timeout-positive", c, "with a hook timeout of 0")
    # a relative path that would resolve from the runtime's working directory
    c = ctx.container("rel", args=["true"])
    h = Hooks(ctx, c)
    rel = os.path.relpath(h.script, ctx.dir)
    e = h.add("createRuntime", "rel")
    e["path"] = rel
    e["args"] = [rel, "rel"]
    ctx.expect_create_error("cfg.hooks.path-absolute", c, f"with hook path {rel!r}", cwd=ctx.dir)
