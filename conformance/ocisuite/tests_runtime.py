"""runtime.md and runtime-linux.md: state, lifecycle, operations, errors."""

import json
import os
import subprocess

from .harness import (TestError, base_config, cgroup_hierarchies, kv, parse_mountinfo,
                      pid_alive, proc_cgroups, read, state_schema_problems, wait_for,
                      wait_pid_exit, write, v1_controller_dir)
from .registry import test

LOOP = ("echo started >> /shared/marker; "
        "while [ ! -e /shared/stop ]; do sleep 0.05; done; echo bye")


def looping(ctx, name="c", config=None):
    """A container whose program marks /shared/marker and runs until /shared/stop."""
    c = ctx.container(name, config=config or base_config(["/bin/sh", "-c", LOOP]))
    shared = ctx.shared(c)
    return c, shared


def marker_lines(shared):
    return (read(os.path.join(shared, "marker"), "") or "").split()


def stop(c, shared, timeout=10):
    write(os.path.join(shared, "stop"), "")
    return c.wait(timeout)


@test("rt.scope", "rt.ops.supported", "rt.state.ociVersion", "rt.state.id", "rt.state.status",
      "rt.state.status-created", "rt.state.status-running", "rt.state.status-stopped",
      "rt.state.status-new-only", "rt.state.pid", "rt.state.bundle", "rt.state.schema",
      "rt.state.annotations", "rt.state-op.returns", "rt.lc.create-no-run", "rt.create.no-args",
      "rt.create.new", "rt.lc.start-run", "rt.start.run", "rt.lc.delete-destroy",
      "rt.delete.resources")
def t_lifecycle(ctx):
    """create / state / start / state / exit / state / delete on one container."""
    c, shared = looping(ctx)
    c.config["annotations"] = {"org.example.conformance": "yes", "com.example.empty": ""}
    c.config["linux"].setdefault("resources", {})["pids"] = {"limit": 100}
    ops_ok = []
    r = c.create()
    ops_ok.append(("create", r.ok))
    if not r.ok:
        raise TestError(f"create failed: {c.diag(r)}")
    stq = c.state_op()
    ops_ok.append(("state", stq.ok))
    try:
        st = json.loads(stq.out) if stq.ok else None
    except ValueError:
        st = None
    ctx.check("rt.state-op.returns", isinstance(st, dict),
              "state printed a JSON object" if isinstance(st, dict) else
              f"state output is not a JSON object: {stq.out[:100]!r} {stq.brief()}")
    if not isinstance(st, dict):
        raise TestError("no state after create")
    seen = [st.get("status")]
    ctx.check("rt.state.ociVersion", isinstance(st.get("ociVersion"), str),
              f"ociVersion={st.get('ociVersion')!r}")
    ctx.check("rt.state.id", st.get("id") == c.id, f"id={st.get('id')!r}")
    ctx.check("rt.state.status", isinstance(st.get("status"), str), f"status={st.get('status')!r}")
    ctx.check("rt.state.status-created", st.get("status") == "created",
              f"after create: status={st.get('status')!r}")
    ctx.check("rt.state.bundle", st.get("bundle") == os.path.realpath(c.bundle)
              and os.path.isabs(st.get("bundle", "")), f"bundle={st.get('bundle')!r}")
    probs = state_schema_problems(st)
    pid = st.get("pid")
    if not isinstance(pid, int) or pid <= 0 or not pid_alive(pid):
        ctx.fail("rt.state.pid", f"created state pid={pid!r} is not a live process")
    else:
        cg = proc_cgroups(pid).get("pids")
        ctx.check("rt.state.pid", cg == c.cgpath,
                  f"created: pid {pid} is in pids cgroup {cg!r} (want {c.cgpath})")
    ann = st.get("annotations")
    if ann is None:
        ctx.check("rt.state.annotations", True, "state has no annotations (allowed)")
    else:
        ctx.check("rt.state.annotations", ann == c.config["annotations"],
                  f"annotations={ann!r}")
    ran_early = wait_for(lambda: marker_lines(shared), timeout=0.3)
    ctx.check("rt.lc.create-no-run", not ran_early,
              "user program ran during create" if ran_early else "no program output before start")
    ctx.check("rt.create.no-args", not ran_early,
              "process.args ran during create" if ran_early else "args not applied before start")
    r = c.start()
    ops_ok.append(("start", r.ok))
    if not r.ok:
        raise TestError(f"start failed: {c.diag(r)}")
    ran = wait_for(lambda: marker_lines(shared), timeout=5)
    ctx.check("rt.lc.start-run", bool(ran), "user program ran after start" if ran else
              "user program produced nothing within 5s of start")
    st2 = c.state() or {}
    seen.append(st2.get("status"))
    probs += state_schema_problems(st2)
    ctx.check("rt.state.status-running", st2.get("status") == "running",
              f"after start: status={st2.get('status')!r}")
    if pid and pid_alive(pid):
        cmd = (read(f"/proc/{pid}/cmdline", "") or "").split("\0")
        ok = cmd[:2] == ["/bin/sh", "-c"] and st2.get("pid") == pid
        ctx.check("rt.state.pid", ok, f"running: pid {st2.get('pid')} cmdline {cmd[:2]}")
        ctx.check("rt.start.run", bool(ran) and cmd[:2] == ["/bin/sh", "-c"],
                  f"pid {pid} runs {cmd[:3]}")
    else:
        ctx.fail("rt.start.run", "container process not alive after start")
    code = stop(c, shared)
    st3 = c.state() or {}
    seen.append(st3.get("status"))
    probs += state_schema_problems(st3)
    ctx.check("rt.state.status-stopped", st3.get("status") == "stopped",
              f"after exit (code {code}): status={st3.get('status')!r}")
    ctx.check("rt.state.status-new-only", seen == ["created", "running", "stopped"],
              f"statuses seen: {seen}")
    ctx.check("rt.state.schema", not probs, "; ".join(probs) or "3 states valid")
    ctx.check("rt.create.new", True, "container created")
    r = c.delete()
    ops_ok.append(("delete", r.ok))
    if not r.ok:
        ctx.fail("rt.lc.delete-destroy", f"delete failed: {c.diag(r)}")
        ctx.fail("rt.delete.resources", f"delete failed: {c.diag(r)}")
    else:
        tr = c.traces()
        ctx.check("rt.lc.delete-destroy", not tr, "; ".join(tr) or "nothing left")
        ctx.check("rt.delete.resources", not tr, "; ".join(tr) or "nothing left")
    bad = [o for o, ok in ops_ok if not ok]
    ctx.check("rt.ops.supported", not bad, f"failed: {bad}" if bad else "all operations work")
    ctx.check("rt.scope", not bad, "caller could drive the whole lifecycle")


@test("rt.state-op.no-id", "rt.state-op.unknown")
def t_state_errors(ctx):
    r = ctx.op(["state"])
    ctx.check("rt.state-op.no-id", r.rc != 0, r.brief())
    r = ctx.op(["state", f"{ctx.run.tag}-does-not-exist"])
    ctx.check("rt.state-op.unknown", r.rc != 0, r.brief())


@test("rt.create.missing-args")
def t_create_missing_args(ctx):
    c = ctx.container("c")
    c.write_config()
    before = set(os.listdir(ctx.run.root))
    r = ctx.op(["create", "--bundle", c.bundle])
    after = set(os.listdir(ctx.run.root))
    ok1 = r.rc != 0 and before == after
    c2 = ctx.container("nob")
    r2 = c2.op(["create", "--bundle", ctx.path("no-such-bundle"), c2.id], inherit_stdio=True)
    tr = c2.traces()
    ctx.check("rt.create.missing-args", ok1 and r2.rc != 0 and not tr,
              f"no id: {r.brief()}, new state entries {sorted(after - before)}; "
              f"missing bundle: exit {r2.rc}, traces {tr}")


@test("rt.create.dup-id", "rt.state.id-unique")
def t_create_dup_id(ctx):
    a = ctx.container("a", args=["sleep", "30"])
    a.must_create()
    st_a = a.state()
    b = ctx.container("b", args=["sleep", "30"], cid=a.id)
    r = b.create()
    st_after = a.state() or {}
    b_cg = [mp + b.cgpath for _, mp, _ in cgroup_hierarchies() if os.path.isdir(mp + b.cgpath)]
    ok = (r.rc != 0 and st_after.get("pid") == st_a.get("pid")
          and st_after.get("status") == "created" and st_after.get("bundle") == st_a.get("bundle")
          and pid_alive(st_a.get("pid")) and not b_cg)
    detail = (f"second create: {r.brief()}; first container after: status="
              f"{st_after.get('status')} pid {st_a.get('pid')}->{st_after.get('pid')} "
              f"bundle same={st_after.get('bundle') == st_a.get('bundle')}; cgroups of the "
              f"second: {b_cg}")
    b.created = False  # never clean up the first container through b's id twice
    ctx.check("rt.create.dup-id", ok, detail)
    ctx.check("rt.state.id-unique", ok, detail)


@test("rt.create.invalid-id")
def t_create_invalid_id(ctx):
    problems = []
    for i, bad in enumerate(("../" + ctx.run.tag + "-escape", "a/b", ".")):
        c = ctx.container(f"c{i}", cid=bad, args=["true"])
        r = c.create()
        made = [p for p in (os.path.normpath(os.path.join(ctx.run.root, bad)),)
                if os.path.exists(p) and p != ctx.run.root]
        cg = [mp + c.cgpath for _, mp, _ in cgroup_hierarchies() if os.path.isdir(mp + c.cgpath)]
        if r.ok:
            problems.append(f"id {bad!r} accepted")
            ctx.op(["delete", "--force", bad])
        elif made or cg:
            problems.append(f"id {bad!r} refused but left {made + cg}")
        c.created = False
    ctx.check("rt.create.invalid-id", not problems, "; ".join(problems) or
              "ids '../x', 'a/b', '.' refused without traces")


@test("rt.start.no-id", "rt.start.not-created")
def t_start_errors(ctx):
    r = ctx.op(["start"])
    ctx.check("rt.start.no-id", r.rc != 0, r.brief())
    c, shared = looping(ctx)
    c.must_create()
    c.must_start()
    wait_for(lambda: marker_lines(shared), timeout=5)
    pid = c.pid
    r = c.start()
    wait_for(lambda: len(marker_lines(shared)) > 1, timeout=0.5)
    st = c.state() or {}
    ok = (r.rc != 0 and st.get("status") == "running" and st.get("pid") == pid
          and pid_alive(pid) and len(marker_lines(shared)) == 1)
    ctx.check("rt.start.not-created", ok,
              f"start of a running container: {r.brief()}; after: status={st.get('status')}, "
              f"program runs={len(marker_lines(shared))}")
    stop(c, shared)
    r = c.start()
    st = c.state() or {}
    ctx.check("rt.start.not-created", r.rc != 0 and st.get("status") == "stopped",
              f"start of a stopped container: {r.brief()}; after: status={st.get('status')}")


@test("rt.start.no-process", "cfg.process.required")
def t_start_no_process(ctx):
    cfg = base_config(["true"])
    del cfg["process"]
    c = ctx.container("c", config=cfg)
    r = c.create()
    if not r.ok:
        tr = c.traces()
        for req in ("rt.start.no-process", "cfg.process.required"):
            ctx.check(req, not tr, f"create already refused it ({r.brief()})"
                      + (f", left {tr}" if tr else ""))
        return
    r2 = c.start()
    for req in ("rt.start.no-process", "cfg.process.required"):
        ctx.check(req, r2.rc != 0, f"create accepted it; start: {r2.brief()}")


@test("rt.kill.no-id", "rt.kill.signal", "rt.kill.created", "rt.kill.not-running")
def t_kill(ctx):
    r = ctx.op(["kill"])
    ctx.check("rt.kill.no-id", r.rc != 0, r.brief())
    script = ("trap 'echo got-usr1 > /shared/sig; exit 0' USR1; echo ready > /shared/ready; "
              "while :; do sleep 0.05; done")
    c = ctx.container("run", config=base_config(["/bin/sh", "-c", script]))
    shared = ctx.shared(c)
    c.must_create()
    c.must_start()
    if not wait_for(lambda: os.path.exists(os.path.join(shared, "ready")), 5):
        raise TestError("container never got ready")
    r = c.kill("USR1")
    got = wait_for(lambda: os.path.exists(os.path.join(shared, "sig")), 5)
    ctx.check("rt.kill.signal", r.ok and bool(got),
              f"kill USR1: {r.brief()}; handler ran={bool(got)}")
    c.wait(5)
    # a created container
    k = ctx.container("created", args=["sleep", "30"])
    k.must_create()
    pid = k.pid
    r = k.kill("KILL")
    try:
        wait_pid_exit(pid, 5)
        dead = True
    except TimeoutError:
        dead = False
    st = k.state() or {}
    ctx.check("rt.kill.created", r.ok and dead,
              f"kill KILL on created: {r.brief()}; process dead={dead}; status={st.get('status')}")
    # a stopped container
    s = ctx.container("stopped", args=["true"])
    s.run()
    st0 = s.state() or {}
    r = s.kill("KILL")
    st1 = s.state() or {}
    ctx.check("rt.kill.not-running", r.rc != 0 and st0.get("status") == "stopped"
              and st1.get("status") == "stopped",
              f"kill on stopped: {r.brief()}; status before={st0.get('status')} "
              f"after={st1.get('status')}")


@test("rt.delete.no-id", "rt.delete.running", "rt.delete.created")
def t_delete_errors(ctx):
    r = ctx.op(["delete"])
    ctx.check("rt.delete.no-id", r.rc != 0, r.brief())
    c, shared = looping(ctx, "run")
    c.must_create()
    c.must_start()
    wait_for(lambda: marker_lines(shared), 5)
    r = c.delete()
    st = c.state() or {}
    ctx.check("rt.delete.running", r.rc != 0 and st.get("status") == "running"
              and pid_alive(c.pid),
              f"delete of running: {r.brief()}; after: status={st.get('status')}, "
              f"alive={pid_alive(c.pid)}")
    stop(c, shared)
    k = ctx.container("created", args=["sleep", "30"])
    k.must_create()
    r = k.delete()
    st = k.state() or {}
    ctx.check("rt.delete.created", r.rc != 0 and st.get("status") == "created"
              and pid_alive(k.pid),
              f"delete of created: {r.brief()}; after: status={st.get('status')}, "
              f"alive={pid_alive(k.pid)}")


@test("rt.delete.keep-foreign", "rt.delete.keep-foreign-cgroup")
def t_delete_foreign(ctx):
    src = ctx.mkdir("bindsrc")
    write(os.path.join(src, "keep"), "precious\n")
    nsfile = ctx.path("netns")
    write(nsfile, "")
    p = ctx.host_cmd(["unshare", f"--net={nsfile}", "true"], check=False)
    if p.returncode != 0:
        raise TestError(f"cannot make a persistent netns: {p.stderr.strip()}")
    ctx.host_mounts.append(nsfile)
    ino = os.stat(nsfile).st_ino
    c = ctx.container("c", args=["/bin/sh", "-c", "ls /data >/dev/null; echo ok"])
    os.makedirs(c.rootfs_path("/data"))
    c.config["mounts"].append({"destination": "/data", "type": "bind", "source": src,
                               "options": ["bind", "rw"]})
    c.config["linux"]["namespaces"] = [n for n in c.config["linux"]["namespaces"]
                                       if n["type"] != "network"] + \
        [{"type": "network", "path": nsfile}]
    # pre-create the container's cgroup: it is not the container's to remove
    made = []
    for names, mp, v in cgroup_hierarchies():
        d = mp + c.cgpath
        try:
            os.mkdir(d)
        except OSError:
            continue
        made.append(d)
        ctx.cgroups_made.append(d)
        if v == 1 and "cpuset" in names.split(","):
            for f in ("cpuset.cpus", "cpuset.mems"):
                write(os.path.join(d, f), read(os.path.join(os.path.dirname(d), f), "").strip())
    out = c.run()
    r = c.delete()
    if not r.ok:
        raise TestError(f"delete failed: {c.diag(r)}")
    keep_ok = read(os.path.join(src, "keep")) == "precious\n"
    ns_ok = any(m["mountpoint"] == nsfile for m in parse_mountinfo(read("/proc/self/mountinfo")))
    ns_ok = ns_ok and os.stat(nsfile).st_ino == ino
    ctx.check("rt.delete.keep-foreign", keep_ok and ns_ok and "ok" in out,
              f"bind source file kept={keep_ok}; joined netns still mounted={ns_ok}")
    gone = [d for d in made if not os.path.isdir(d)]
    ctx.check("rt.delete.keep-foreign-cgroup", made and not gone,
              f"pre-existing cgroups removed by delete: {gone}" if gone else
              f"{len(made)} pre-existing cgroup dirs kept")


@test("rt.lc.create-error", "rt.create.cannot-apply", "rt.err.no-trace")
def t_create_failures(ctx):
    c = ctx.container("badbind", args=["true"])
    os.makedirs(c.rootfs_path("/mnt/x"))
    c.config["mounts"].append({"destination": "/mnt/x", "type": "bind",
                               "source": ctx.path("no-such-source"), "options": ["bind"]})
    ctx.expect_create_error("rt.lc.create-error", c, "with a missing bind source")
    c = ctx.container("badsysctl", args=["true"])
    c.config["linux"]["sysctl"] = {"net.conformance.no_such_key": "1"}
    ctx.expect_create_error("rt.create.cannot-apply", c, "with an unknown sysctl")
    c = ctx.container("badfs", args=["true"])
    c.config["linux"].setdefault("resources", {})["memory"] = {"limit": 64 << 20}
    os.makedirs(c.rootfs_path("/mnt/y"))
    c.config["mounts"].append({"destination": "/mnt/y", "type": "conformancebogusfs",
                               "source": "none"})
    ctx.expect_create_error("rt.err.no-trace", c, "with an unknown filesystem type mounted last")


@test("rt.lc.config-frozen")
def t_config_frozen(ctx):
    c = ctx.container("c", args=["/bin/sh", "-c", 'echo "v=$FOO h=$(hostname)"'])
    c.config["process"]["env"].append("FOO=original")
    c.config["hostname"] = "original"
    c.must_create()
    cfg = json.loads(json.dumps(c.config))
    cfg["process"]["args"] = ["/bin/sh", "-c", 'echo "v=changed-args"']
    cfg["process"]["env"] = [e for e in cfg["process"]["env"] if not e.startswith("FOO=")] + \
        ["FOO=changed"]
    cfg["hostname"] = "changed"
    with open(os.path.join(c.bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    c.must_start()
    c.wait()
    out = c.stdout().strip()
    ctx.check("rt.lc.config-frozen", out == "v=original h=original", f"output {out!r}")


@test("rt.create.apply-all", "rt.lc.create-env")
def t_create_applies(ctx):
    c = ctx.container("c", args=["true"])
    c.config["hostname"] = "applied"
    c.config["linux"].setdefault("resources", {})["memory"] = {"limit": 96 << 20}
    os.makedirs(c.rootfs_path("/mnt/applied"))
    c.config["mounts"].append({"destination": "/mnt/applied", "type": "tmpfs",
                               "source": "tmpfs", "options": ["size=1m"]})
    c.must_create()
    pid = c.pid
    problems = []
    p = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True,
                       text=True)
    if p.stdout.strip() != "applied":
        problems.append(f"hostname in its uts ns is {p.stdout.strip()!r}")
    if os.readlink(f"/proc/{pid}/ns/net") == ctx.run.host_ns["net"]:
        problems.append("no new network namespace")
    mi = parse_mountinfo(read(f"/proc/{pid}/mountinfo", ""))
    if not any(m["mountpoint"].endswith("/mnt/applied") and m["fstype"] == "tmpfs" for m in mi):
        problems.append("tmpfs /mnt/applied not mounted")
    mem = v1_controller_dir("memory")
    path = proc_cgroups(pid).get("memory")
    if mem and path:
        lim = (read(f"{mem}{path}/memory.limit_in_bytes", "") or "").strip()
        if lim != str(96 << 20):
            problems.append(f"memory limit is {lim!r}")
    elif mem:
        problems.append("process in no memory cgroup")
    detail = "; ".join(problems) or "uts, net, mounts and memory limit in place before start"
    ctx.check("rt.create.apply-all", not problems, detail)
    ctx.check("rt.lc.create-env", not problems, detail)


@test("rtl.fds")
def t_fds(ctx):
    c = ctx.container("c", args=["/probe", "fds"])
    out = c.run()
    fds = sorted(int(line.split()[0].split("=")[1]) for line in out.splitlines()
                 if line.startswith("fd="))
    ctx.check("rtl.fds", fds == [0, 1, 2], f"open fds {fds}: {out.strip()[:200]!r}")


@test("rtl.devlinks")
def t_devlinks(ctx):
    c = ctx.container("c", args=["/bin/sh", "-c",
                                 "for f in fd stdin stdout stderr; do "
                                 "echo $f=$(readlink /dev/$f); done"])
    got = kv(c.run())
    want = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
            "stderr": "/proc/self/fd/2"}
    ctx.check("rtl.devlinks", got == want, f"links {got}")


@test("cfg.annotations.unknown", "cfg.annotations.key-nonempty", "cfg.annotations.values-string")
def t_annotations(ctx):
    c = ctx.container("unknown", args=["/bin/sh", "-c", "echo ran"])
    c.config["annotations"] = {"com.example.conformance.unknown": "value",
                               "org.opencontainers.image.os": "linux"}
    r = c.create()
    if r.ok:
        c.must_start()
        c.wait()
    ctx.check("cfg.annotations.unknown", r.ok and c.stdout().strip() == "ran",
              "ran with unknown annotation keys" if r.ok else c.diag(r)[:200])
    c = ctx.container("emptykey", args=["true"])
    c.config["annotations"] = {"": "value"}
    ctx.expect_create_error("cfg.annotations.key-nonempty", c, "with an empty annotation key")
    c = ctx.container("number", args=["true"])
    c.config["annotations"] = {"com.example.number": 5}
    ctx.expect_create_error("cfg.annotations.values-string", c, "with a numeric annotation value")


@test("cfg.ext.ignore-unknown")
def t_unknown_properties(ctx):
    c = ctx.container("c", args=["/bin/sh", "-c", "echo ran"])
    cfg = c.config
    cfg["conformanceUnknown"] = {"nested": [1, 2, {"x": None}]}
    cfg["process"]["conformanceUnknown"] = "x"
    cfg["root"]["conformanceUnknown"] = True
    cfg["linux"]["conformanceUnknown"] = 42
    cfg["linux"]["resources"]["conformanceUnknown"] = {"a": 1}
    cfg["mounts"][0]["conformanceUnknown"] = "y"
    r = c.create()
    if r.ok:
        c.must_start()
        c.wait()
    ctx.check("cfg.ext.ignore-unknown", r.ok and c.stdout().strip() == "ran",
              "ran with unknown properties at 6 levels" if r.ok else c.diag(r)[:200])


@test("cfg.valid-values")
def t_invalid_values(ctx):
    cases = [
        ("nstype", lambda cfg: cfg["linux"]["namespaces"].append({"type": "conformance"}),
         "namespace type 'conformance'"),
        ("propagation", lambda cfg: cfg["linux"].__setitem__("rootfsPropagation", "sideways"),
         "rootfsPropagation 'sideways'"),
        ("seccomp", lambda cfg: cfg["linux"].__setitem__("seccomp", {
            "defaultAction": "SCMP_ACT_CONFORMANCE"}), "seccomp defaultAction "
                                                       "'SCMP_ACT_CONFORMANCE'"),
        ("devaccess", lambda cfg: cfg["linux"]["resources"]["devices"].append(
            {"allow": True, "type": "q", "access": "rwm"}), "device rule type 'q'"),
    ]
    bad = []
    for name, mod, what in cases:
        c = ctx.container(name, args=["true"])
        mod(c.config)
        r = c.create()
        if r.ok:
            bad.append(f"{what} accepted")
        else:
            tr = c.traces()
            if tr:
                bad.append(f"{what} refused but left {tr}")
    ctx.check("cfg.valid-values", not bad, "; ".join(bad) or
              "unknown namespace type, propagation, seccomp action and device type refused")
