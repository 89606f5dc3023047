"""config-linux.md control groups: cgroupsPath, ownership, device allow list, resources.

Values are read from the kernel: the container's own /proc/self/cgroup tells where it
is, and the cgroup files at that place (on the host) hold what was applied. Where this
host cannot apply a setting (no such controller or file), the runtime must fail create
instead (runtime.md#runtimeCreate: "If the runtime cannot apply a property ... it MUST
generate an error")."""

import os

from .harness import (Skip, cgroup_hierarchies, cgroup_mode, parse_cgroup_text,
                      proc_cgroups, read, status_fields, v1_controller_dir)
from .registry import test


def resource_run(ctx, name, resources, args=None, mod=None):
    """Create a container with resources; read its cgroup paths right after create.
    Returns dict(ok, diag, paths, out, c)."""
    c = ctx.container(name, args=args or ["/bin/cat", "/proc/self/cgroup"])
    c.config["linux"]["resources"] = dict(c.config["linux"].get("resources", {}), **resources)
    if mod:
        mod(c.config)
    r = c.create()
    res = {"ok": r.ok, "diag": c.diag(r) if not r.ok else "", "paths": {}, "out": "", "c": c,
           "traces": c.traces() if not r.ok else []}
    if not r.ok:
        return res
    res["paths"] = proc_cgroups(c.pid)
    res["files"] = {}
    return res


def finish(res):
    c = res["c"]
    c.must_start()
    c.wait()
    res["out"] = c.stdout()
    return res


def cg_file(res, controller, fname, v2=False):
    """Path of a cgroup file for the container, None if the host has no such file."""
    if v2:
        p = res["paths"].get("")
        for names, mp, v in cgroup_hierarchies():
            if v == 2 and p is not None:
                f = f"{mp}{p}/{fname}"
                return f if os.path.exists(f) else None
        return None
    mp = v1_controller_dir(controller)
    p = res["paths"].get(controller)
    if not mp or p is None:
        return None
    f = f"{mp}{p}/{fname}"
    return f if os.path.exists(f) else None


def host_can_apply(ctx, controller, files, value):
    """Can this host take `value` in one of `files`? Tried in a scratch cgroup of our own
    under the run's prefix (removed again), so "cannot apply" means the kernel said no."""
    mp = v1_controller_dir(controller)
    if not mp:
        return False
    parent = mp + ctx.run.cgprefix
    scratch = os.path.join(parent, f"scratch-{ctx.slug}")
    try:
        os.mkdir(scratch)
    except OSError:
        return False
    try:
        if controller == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(scratch, f), "w") as fh:
                    fh.write((read(os.path.join(parent, f), "") or "").strip())
        if isinstance(value, list):      # several writes, in order, all must work
            try:
                for f, v in value:
                    with open(os.path.join(scratch, f), "w") as fh:
                        fh.write(str(v))
                return True
            except OSError:
                return False
        for f in files:
            path = os.path.join(scratch, f)
            if not os.path.exists(path):
                continue
            try:
                with open(path, "w") as fh:
                    fh.write(str(value))
                return True
            except OSError:
                continue
        return False
    finally:
        try:
            os.rmdir(scratch)
        except OSError:
            pass


def judge(ctx, req, res, checks, what):
    """checks: list of (controller, [file names], expected-predicate, label[, probe]).
    Pass if every check finds its file with the expected value; if the host cannot take
    the value at all (tried in a scratch cgroup), pass only if create failed cleanly."""
    unsupported = []
    checks = [tuple(ch) + (ch[3],) if len(ch) == 4 else tuple(ch) for ch in checks]
    for controller, files, pred, label, probe in checks:
        if not host_can_apply(ctx, controller, files, probe):
            unsupported.append(f"{'/'.join(files)} <- {label}")
    if not res["ok"]:
        if unsupported:
            ok = not res["traces"]
            ctx.check(req, ok, f"host cannot apply {unsupported}; create failed"
                      + (f" but left {res['traces']}" if not ok else f" ({res['diag'][:120]})"))
        else:
            ctx.fail(req, f"{what}: create failed although the host takes it: "
                          f"{res['diag'][:300]}")
        return
    if unsupported:
        ctx.fail(req, f"{what}: host cannot apply {unsupported} but create succeeded "
                      "(setting silently dropped)")
        return
    for controller, files, pred, label, _ in checks:
        path = next((cg_file(res, controller, f) for f in files if cg_file(res, controller, f)),
                    None)
        if path is None:
            ctx.fail(req, f"{label}: container not in a {controller} cgroup with {files}")
            return
        val = (read(path, "") or "").strip()
        ok = pred(val)
        ctx.check(req, ok, f"{os.path.basename(path)} = {val[:80]!r}" +
                  ("" if ok else f" (want {label})"))


def eq(v):
    return lambda s: s == str(v)


def contains(v):
    return lambda s: v in s.splitlines() or v in s


MEM = [("lnx.mem.limit", {"limit": 64 << 20}, [("memory", ["memory.limit_in_bytes"],
                                                  eq(64 << 20), str(64 << 20))]),
       ("lnx.mem.reservation", {"reservation": 32 << 20},
        [("memory", ["memory.soft_limit_in_bytes"], eq(32 << 20), str(32 << 20))]),
       ("lnx.mem.swap", {"limit": 64 << 20, "swap": 128 << 20},
        [("memory", ["memory.memsw.limit_in_bytes"], eq(128 << 20), str(128 << 20),
          [("memory.limit_in_bytes", 64 << 20), ("memory.memsw.limit_in_bytes", 128 << 20)])]),
       ("lnx.mem.kernelTCP", {"kernelTCP": 16 << 20},
        [("memory", ["memory.kmem.tcp.limit_in_bytes"], eq(16 << 20), str(16 << 20))]),
       ("lnx.mem.swappiness", {"swappiness": 37},
        [("memory", ["memory.swappiness"], eq(37), "37")]),
       ("lnx.mem.disableOOMKiller", {"disableOOMKiller": True},
        [("memory", ["memory.oom_control"], contains("oom_kill_disable 1"),
          "oom_kill_disable 1", "1")]),
       ("lnx.mem.useHierarchy", {"useHierarchy": True},
        [("memory", ["memory.use_hierarchy"], eq(1), "1")])]

CPU = [("lnx.cpu.shares", {"shares": 512}, [("cpu", ["cpu.shares"], eq(512), "512")]),
       ("lnx.cpu.quota", {"quota": 50000, "period": 100000},
        [("cpu", ["cpu.cfs_quota_us"], eq(50000), "50000")]),
       ("lnx.cpu.period", {"quota": 50000, "period": 200000},
        [("cpu", ["cpu.cfs_period_us"], eq(200000), "200000")]),
       ("lnx.cpu.burst", {"quota": 50000, "period": 100000, "burst": 10000},
        [("cpu", ["cpu.cfs_burst_us"], eq(10000), "10000",
          [("cpu.cfs_quota_us", 50000), ("cpu.cfs_burst_us", 10000)])]),
       ("lnx.cpu.realtimeRuntime", {"realtimeRuntime": 20000, "realtimePeriod": 500000},
        [("cpu", ["cpu.rt_runtime_us"], eq(20000), "20000")]),
       ("lnx.cpu.realtimePeriod", {"realtimeRuntime": 20000, "realtimePeriod": 500000},
        [("cpu", ["cpu.rt_period_us"], eq(500000), "500000")]),
       ("lnx.cpu.mems", {"mems": "0"}, [("cpuset", ["cpuset.mems"], eq("0"), "0")]),
       ("lnx.cpu.idle", {"idle": 1}, [("cpu", ["cpu.idle"], eq(1), "1")])]


def _resource_cases(ctx, cases, key):
    for req, sub, checks in cases:
        res = resource_run(ctx, req.split(".")[-1], {key: sub})
        judge(ctx, req, res, checks, f"{key} {sub}")


@test(*[c[0] for c in MEM], "lnx.mem.kernel", "lnx.mem.checkBeforeUpdate")
def t_memory(ctx):
    _resource_cases(ctx, MEM, "memory")
    ctx.skip("lnx.mem.checkBeforeUpdate", "applies to `update`, which is not an OCI operation")
    res = resource_run(ctx, "kernel", {"memory": {"kernel": 64 << 20}})
    if res["ok"]:
        f = cg_file(res, "memory", "memory.kmem.limit_in_bytes")
        val = (read(f, "") or "").strip() if f else None
        if val == str(64 << 20):
            ctx.check("lnx.mem.kernel", True, f"memory.kmem.limit_in_bytes = {val}")
        elif f and int(val or 0) > 1 << 60:
            ctx.skip("lnx.mem.kernel", "this kernel ignores kmem limits (no-op since Linux "
                     "5.16), so the setting is not observable")
        else:
            ctx.fail("lnx.mem.kernel", f"memory.kmem.limit_in_bytes = {val!r}")
    else:
        ctx.check("lnx.mem.kernel", not res["traces"],
                  f"create refused the kernel memory limit ({res['diag'][:120]})")


@test(*[c[0] for c in CPU], "lnx.cpu.cpus")
def t_cpu(ctx):
    _resource_cases(ctx, CPU, "cpu")
    res = resource_run(ctx, "cpus", {"cpu": {"cpus": "0"}},
                       args=["/bin/grep", "Cpus_allowed_list", "/proc/self/status"])
    if not res["ok"]:
        ctx.fail("lnx.cpu.cpus", f"create failed: {res['diag'][:200]}")
        return
    f = cg_file(res, "cpuset", "cpuset.cpus")
    val = (read(f, "") or "").strip() if f else None
    finish(res)
    inside = status_fields(res["out"]).get("Cpus_allowed_list")
    ctx.check("lnx.cpu.cpus", val == "0" and inside == "0",
              f"cpuset.cpus {val!r}; inside Cpus_allowed_list {inside!r}")


def block_device():
    for d in sorted(os.listdir("/sys/block")):
        if d.startswith(("loop", "ram", "zram", "dm-")):
            continue
        dev = read(f"/sys/block/{d}/dev")
        if dev:
            return tuple(int(x) for x in dev.strip().split(":"))
    return None


@test("lnx.blkio.weight", "lnx.blkio.leafWeight", "lnx.blkio.weightDevice",
      "lnx.blkio.throttleReadBps", "lnx.blkio.throttleWriteBps", "lnx.blkio.throttleReadIOPS",
      "lnx.blkio.throttleWriteIOPS")
def t_blkio(ctx):
    dev = block_device()
    if dev is None:
        raise Skip("no block device on this host")
    ma, mi = dev
    cases = [
        ("lnx.blkio.weight", {"weight": 500},
         [("blkio", ["blkio.weight", "blkio.bfq.weight"], lambda s: "500" in s.split(), "500")]),
        ("lnx.blkio.leafWeight", {"leafWeight": 300},
         [("blkio", ["blkio.leaf_weight"], eq(300), "300")]),
        ("lnx.blkio.weightDevice", {"weightDevice": [{"major": ma, "minor": mi, "weight": 400}]},
         [("blkio", ["blkio.weight_device", "blkio.bfq.weight_device"],
           contains(f"{ma}:{mi} 400"), f"{ma}:{mi} 400")]),
    ]
    for key, fname, req in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device",
                             "lnx.blkio.throttleReadBps"),
                            ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device",
                             "lnx.blkio.throttleWriteBps"),
                            ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device",
                             "lnx.blkio.throttleReadIOPS"),
                            ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device",
                             "lnx.blkio.throttleWriteIOPS")):
        cases.append((req, {key: [{"major": ma, "minor": mi, "rate": 1048576}]},
                      [("blkio", [fname], contains(f"{ma}:{mi} 1048576"),
                        f"{ma}:{mi} 1048576")]))
    _resource_cases(ctx, cases, "blockIO")


@test("lnx.hugetlb.limit")
def t_hugetlb(ctx):
    if not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        raise Skip("no 2MB huge pages on this host")
    limit = 4 << 20
    res = resource_run(ctx, "c", {"hugepageLimits": [{"pageSize": "2MB", "limit": limit}]})
    v1 = bool(v1_controller_dir("hugetlb"))
    # a v2 hierarchy with the hugetlb controller counts, on hybrid hosts too (where
    # the unified tree may hold just that controller)
    v2 = any(v == 2 and "hugetlb" in (read(mp + "/cgroup.controllers", "") or "").split()
             for _, mp, v in cgroup_hierarchies())
    if not res["ok"]:
        if not v1 and not v2:
            ok = not res["traces"]
            ctx.check("lnx.hugetlb.limit", ok,
                      f"no usable hugetlb controller ({cgroup_mode()} host); create refused"
                      + (f" but left {res['traces']}" if not ok else f" ({res['diag'][:100]})"))
        else:
            ctx.fail("lnx.hugetlb.limit", f"create failed: {res['diag'][:200]}")
        return
    vals = []
    f1 = cg_file(res, "hugetlb", "hugetlb.2MB.limit_in_bytes") if v1 else None
    f1r = cg_file(res, "hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes") if v1 else None
    f2 = cg_file(res, None, "hugetlb.2MB.max", v2=True) if v2 else None
    for f in (f1, f1r, f2):
        if f:
            vals.append((os.path.basename(f), (read(f, "") or "").strip()))
    ok = any(v == str(limit) for _, v in vals)
    ctx.check("lnx.hugetlb.limit", ok, f"{vals or 'no hugetlb file for the container'} "
              f"(want {limit}); hugetlb controller v1={v1} v2={v2}")


@test("lnx.net.classID", "lnx.net.priorities")
def t_net_cls_prio(ctx):
    res = resource_run(ctx, "cls", {"network": {"classID": 0x100001}})
    judge(ctx, "lnx.net.classID", res,
          [("net_cls", ["net_cls.classid"], eq(0x100001), str(0x100001))], "classID")
    res = resource_run(ctx, "prio", {"network": {"priorities": [{"name": "lo",
                                                                  "priority": 7}]}})
    judge(ctx, "lnx.net.priorities", res,
          [("net_prio", ["net_prio.ifpriomap"], contains("lo 7"), "lo 7")], "priorities")


@test("lnx.pids.limit", "lnx.pids.zero")
def t_pids(ctx):
    res = resource_run(ctx, "limit", {"pids": {"limit": 7}})
    judge(ctx, "lnx.pids.limit", res, [("pids", ["pids.max"], eq(7), "7")], "pids 7")
    res = resource_run(ctx, "zero", {"pids": {"limit": 0}})
    judge(ctx, "lnx.pids.zero", res, [("pids", ["pids.max"], eq(0), "0")], "pids 0")


@test("lnx.rdma.limit", "lnx.rdma.one-of")
def t_rdma(ctx):
    res = resource_run(ctx, "limit", {"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 10}}})
    judge(ctx, "lnx.rdma.limit", res,
          [("rdma", ["rdma.max"], contains("mlx5_0 hca_handle=3 hca_object=10"), "mlx5_0",
            "mlx5_0 hca_handle=3 hca_object=10")],
          "rdma")
    c = ctx.container("oneof", args=["true"])
    c.config["linux"]["resources"]["rdma"] = {"mlx5_0": {}}
    ctx.expect_create_error("lnx.rdma.one-of", c, "with an rdma entry without limits")


@test("lnx.unified.missing-controller", "lnx.unified.controllers", "lnx.unified.unknown-written",
      "lnx.unified.conversion")
def t_unified(ctx):
    mode = cgroup_mode()
    for q in ("lnx.unified.controllers", "lnx.unified.unknown-written", "lnx.unified.conversion"):
        if mode != "v2":
            ctx.skip(q, f"needs a cgroup v2 host (this one is {mode})")
    if mode == "v2":
        for q in ("lnx.unified.controllers", "lnx.unified.unknown-written",
                  "lnx.unified.conversion"):
            ctx.skip(q, "cgroup v2 unified tests are not implemented yet")
        key = "conformancebogus.max"
    else:
        key = "pids.max"       # pids is a v1 controller here: not in the unified hierarchy
    c = ctx.container("c", args=["true"])
    c.config["linux"]["resources"]["unified"] = {key: "10"}
    ctx.expect_create_error("lnx.unified.missing-controller", c,
                            f"with unified {key} (controller not in the v2 hierarchy)")


@test("lnx.cg.path-absolute", "lnx.cg.path-consistent", "lnx.cg.fit-check",
      "lnx.cg.path-invalid")
def t_cgroups_path(ctx):
    ctx.skip("lnx.cg.fit-check", "conditional on an optional (MAY) check by the runtime")
    ctx.skip("lnx.cg.path-invalid", "conditional on runtime-defined invalid values")
    seen = []
    for i in (1, 2):
        c = ctx.container(f"c{i}", args=["/bin/cat", "/proc/self/cgroup"])
        c.cgpath = f"{ctx.run.cgprefix}/{ctx.slug}-same"
        c.config["linux"]["cgroupsPath"] = c.cgpath
        c.config["linux"]["resources"].update({"memory": {"limit": 64 << 20},
                                               "pids": {"limit": 50}})
        c.must_create()
        pid = c.pid
        procs = (read(f"{v1_controller_dir('memory')}{c.cgpath}/cgroup.procs", "") or "").split() \
            if v1_controller_dir("memory") else []
        c.must_start()
        c.wait()
        inside = parse_cgroup_text(c.stdout())
        seen.append({k: inside.get(k) for k in ("memory", "pids")})
        if i == 1:
            ok = inside.get("memory") == c.cgpath and inside.get("pids") == c.cgpath and \
                str(pid) in procs
            ctx.check("lnx.cg.path-absolute", ok,
                      f"inside: memory {inside.get('memory')}, pids {inside.get('pids')}; host "
                      f"{v1_controller_dir('memory')}{c.cgpath} holds pid {pid}: {str(pid) in procs}")
        r = c.delete()
        if not r.ok:
            c.delete(force=True)
    ctx.check("lnx.cg.path-consistent", seen[0] == seen[1] and seen[0]["memory"],
              f"first {seen[0]}, second {seen[1]}")


OWNER_V2 = ("lnx.cg.owner-needs-cgroupns", "lnx.cg.owner-rw-only", "lnx.cg.owner-delegate-files",
            "lnx.cg.owner-missing-ok", "lnx.cg.owner-fallback", "lnx.cg.owner-no-other")


@test("lnx.cg.owner-v1", *OWNER_V2)
def t_cgroup_owner(ctx):
    mode = cgroup_mode()
    for q in OWNER_V2:
        ctx.skip(q, f"cgroup v2 ownership rules; this host is {mode}" if mode != "v2" else
                 "cgroup v2 ownership tests are not implemented yet")
    if mode == "v2":
        ctx.skip("lnx.cg.owner-v1", "host uses cgroup v2")
        return
    c = ctx.container("c", args=["true"])
    c.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    c.config["linux"]["namespaces"].append({"type": "cgroup"})
    c.config["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup",
                               "source": "cgroup", "options": ["nosuid", "noexec", "nodev"]})
    c.config["linux"]["resources"]["memory"] = {"limit": 64 << 20}
    r = c.create()
    if not r.ok:
        ctx.fail("lnx.cg.owner-v1", f"create failed: {c.diag(r)[:200]}")
        return
    changed = []
    for names, mp, v in cgroup_hierarchies():
        d = mp + c.cgpath
        if v != 1 or not os.path.isdir(d):
            continue
        for p in [d] + [os.path.join(d, f) for f in os.listdir(d)]:
            st = os.stat(p)
            if st.st_uid != 0 or st.st_gid != 0:
                changed.append(f"{p} {st.st_uid}:{st.st_gid}")
    ctx.check("lnx.cg.owner-v1", not changed, f"{len(changed)} changed, e.g. {changed[:2]}"
              if changed else "all cgroup dirs and files still owned by root")


KMSG = {"path": "/dev/conf-kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666}


def devcg_open(ctx, name, rules):
    c = ctx.container(name, args=["/probe", "open", KMSG["path"], "w"])
    c.config["linux"]["devices"] = [dict(KMSG)]
    c.config["linux"]["resources"]["devices"] = rules
    r = c.create()
    if not r.ok:
        return None, c.diag(r)
    c.must_start()
    c.wait()
    return c.stdout().strip(), ""


@test("lnx.devcg.order", "lnx.devcg.wildcards")
def t_device_cgroup(ctx):
    deny_all = {"allow": False, "access": "rwm"}
    base, d = devcg_open(ctx, "deny", [deny_all])
    allowed, d2 = devcg_open(ctx, "allow", [deny_all, {"allow": True, "type": "c", "major": 1,
                                                       "minor": 11, "access": "w"}])
    if base is None or allowed is None:
        for q in ("lnx.devcg.order", "lnx.devcg.wildcards"):
            ctx.fail(q, f"create failed: {(d or d2)[:200]}")
        return
    if base != "errno=1" or allowed != "errno=0":
        raise Skip(f"cannot calibrate with /dev/kmsg (1:11): deny-all gives {base}, "
                   f"allowing it gives {allowed}")
    last_deny, _ = devcg_open(ctx, "order1", [deny_all,
                                              {"allow": True, "type": "c", "major": 1, "minor": 11,
                                               "access": "w"},
                                              {"allow": False, "type": "c", "major": 1,
                                               "minor": 11, "access": "w"}])
    last_allow, _ = devcg_open(ctx, "order2", [deny_all,
                                               {"allow": False, "type": "c", "major": 1,
                                                "minor": 11, "access": "w"},
                                               {"allow": True, "type": "c", "major": 1,
                                                "minor": 11, "access": "w"}])
    ctx.check("lnx.devcg.order", last_deny == "errno=1" and last_allow == "errno=0",
              f"allow then deny: {last_deny} (want errno=1); deny then allow: {last_allow} "
              "(want errno=0)")
    any_num, _ = devcg_open(ctx, "wild1", [deny_all, {"allow": True, "type": "c",
                                                      "access": "w"}])
    any_type, _ = devcg_open(ctx, "wild2", [deny_all, {"allow": True, "major": 1, "minor": 11,
                                                       "access": "w"}])
    ctx.check("lnx.devcg.wildcards", any_num == "errno=0" and any_type == "errno=0",
              f"type c, no major/minor: {any_num}; 1:11 with no type: {any_type} (want errno=0)")
