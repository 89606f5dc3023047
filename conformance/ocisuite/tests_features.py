"""features.md and features-linux.md: what `RUNTIME features` claims, checked against
what the runtime does with configs that use the claimed names."""

import json
import os
import re
import subprocess

from .harness import Hooks, Skip, status_fields
from .registry import test
from .tests_seccomp import ALLOW, Agent

TOP_KEYS = {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations",
            "potentiallyUnsafeConfigAnnotations"}
LINUX_KEYS = {"namespaces": None, "capabilities": None,
              "cgroup": {"v1", "v2", "systemd", "systemdUser", "rdma"},
              "seccomp": {"enabled", "actions", "operators", "archs", "knownFlags",
                          "supportedFlags"},
              "apparmor": {"enabled"}, "selinux": {"enabled"},
              "intelRdt": {"enabled", "schemata", "monitoring"},
              "mountExtensions": {"idmap"}, "netDevices": {"enabled"},
              "memoryPolicy": {"modes", "flags"}}


def features(ctx):
    f = ctx.run.features
    if f is None:
        raise Skip(f"the runtime provides no features structure (optional): "
                   f"{(ctx.run.features_error or '')[:120]}")
    return f


def semver_key(v):
    m = re.match(r"(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?", v or "")
    if not m:
        return None
    pre = m.group(4)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if pre else 1, pre or "")


def create_ok(ctx, name, mod, start=True):
    """Create (and by default start and wait for) a `true` container changed by mod."""
    c = ctx.container(name, args=["true"])
    mod(c.config, c)
    r = c.create()
    if not r.ok:
        return False, c.diag(r)[:160]
    if start:
        s = c.start()
        if not s.ok:
            return False, "start: " + c.diag(s)[:140]
        c.wait(10)
    r = c.delete(force=True)
    return True, ""


def each_ok(ctx, name, items, mod_for):
    """All items in one container first; on failure, one by one to name the culprits."""
    def mod(cfg, c):
        for it in items:
            mod_for(it)(cfg, c)
    ok, diag = create_ok(ctx, f"{name}-all", mod)
    if ok:
        return []
    bad = []
    for i, it in enumerate(items):
        ok, diag = create_ok(ctx, f"{name}-{i}", mod_for(it))
        if not ok:
            bad.append(f"{it}: {diag[:80]}")
    return bad or [f"all together: {diag}"]


@test("feat.compile-time")
def t_features_fixed(ctx):
    f = features(ctx)
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs conformance /sys/fs/cgroup && exec "$@"', "sh"] + \
        ctx.run.runtime.cmd(ctx.run.root, ["features"])
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    try:
        other = json.loads(p.stdout)
    except ValueError:
        ctx.fail("feat.compile-time", f"features failed with /sys/fs/cgroup hidden: "
                 f"{(p.stderr or p.stdout)[:120]}")
        return
    ctx.check("feat.compile-time", other == f,
              "same structure with the host's cgroup hierarchies hidden" if other == f else
              "the structure changes with the host's cgroup mounts")


@test("feat.ociVersionMin", "feat.ociVersionMax", "feat.ociVersionMax.not-less",
      "feat.null-not-empty", "feat.no-unknown-props", "feat.annotations")
def t_features_shape(ctx):
    f = features(ctx)
    vmin, vmax = f.get("ociVersionMin"), f.get("ociVersionMax")
    ctx.check("feat.ociVersionMin", isinstance(vmin, str) and semver_key(vmin) is not None,
              f"ociVersionMin={vmin!r}")
    ctx.check("feat.ociVersionMax", isinstance(vmax, str) and semver_key(vmax) is not None,
              f"ociVersionMax={vmax!r}")
    kmin, kmax = semver_key(vmin), semver_key(vmax)
    ctx.check("feat.ociVersionMax.not-less", bool(kmin and kmax and kmax >= kmin),
              f"{vmin} <= {vmax}")
    ctx.check("feat.null-not-empty", vmin is not None and vmax is not None,
              "ociVersionMin/Max are set")
    unknown = [k for k in f if k not in TOP_KEYS]
    lin = f.get("linux") or {}
    for k, v in lin.items():
        if k not in LINUX_KEYS:
            unknown.append(f"linux.{k}")
        elif LINUX_KEYS[k] and isinstance(v, dict):
            unknown += [f"linux.{k}.{s}" for s in v if s not in LINUX_KEYS[k]]
    ctx.check("feat.no-unknown-props", not unknown,
              f"not defined by runtime-spec 1.3: {unknown}" if unknown else
              "every property is defined by runtime-spec 1.3")
    ann = f.get("annotations")
    ok = ann is None or (isinstance(ann, dict) and all(isinstance(k, str) and k and
                                                       isinstance(v, str) for k, v in ann.items()))
    ctx.check("feat.annotations", ok, f"{len(ann or {})} annotations, all strings"
              if ok else f"annotations {ann!r}")


@test("feat.ociVersionMin.accepted", "feat.ociVersionMax.accepted")
def t_features_versions(ctx):
    f = features(ctx)
    for req, v in (("feat.ociVersionMin.accepted", f.get("ociVersionMin")),
                   ("feat.ociVersionMax.accepted", f.get("ociVersionMax"))):
        ok, diag = create_ok(ctx, req.split(".")[1].lower(),
                             lambda cfg, c, v=v: cfg.__setitem__("ociVersion", v), start=False)
        ctx.check(req, ok, f"config ociVersion {v!r}: " + ("accepted" if ok else diag))


@test("feat.hooks")
def t_features_hooks(ctx):
    f = features(ctx)
    kinds = f.get("hooks")
    if not kinds:
        raise Skip("no hooks listed")
    c = ctx.container("c", args=["true"])
    h = Hooks(ctx, c)
    for k in kinds:
        h.add(k, k, in_container=(k == "startContainer"))
    r = c.create()
    if not r.ok:
        ctx.fail("feat.hooks", f"create failed: {c.diag(r)[:200]}")
        return
    c.must_start()
    c.wait()
    c.delete()
    missing = [k for k in kinds if not h.reader.ran(k)]
    ctx.check("feat.hooks", not missing, f"listed hooks that never ran: {missing}" if missing
              else f"all {len(kinds)} listed hooks ran")


BINDISH = {"bind", "rbind", "shared", "rshared", "slave", "rslave", "private", "rprivate",
           "unbindable", "runbindable", "idmap", "ridmap"}
FS_SPECIFIC = {"user_xattr", "nouser_xattr", "data", "errors", "commit", "discard", "nodiscard",
               "barrier", "nobarrier", "inode64", "nouuid", "usrquota", "grpquota", "prjquota"}


def mount_for_option(ctx, opt, i):
    dest = f"/mnt/o{i}"

    def mod(cfg, c):
        os.makedirs(c.rootfs_path(dest), exist_ok=True)
        if opt in BINDISH or opt.startswith("r") and opt not in ("ro", "rw", "relatime",
                                                               "remount"):
            src = ctx.mkdir("bindsrc")
            m = {"destination": dest, "type": "bind", "source": src,
                 "options": (["rbind"] if opt != "bind" else []) + [opt]}
            if opt in ("idmap", "ridmap"):
                m["uidMappings"] = m["gidMappings"] = [{"containerID": 0, "hostID": 1000,
                                                        "size": 10}]
            cfg["mounts"].append(m)
        elif opt == "remount":
            cfg["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs"})
            cfg["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                                  "options": ["remount", "ro"]})
        else:
            cfg["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                                  "options": [opt]})
    return mod


@test("feat.mountOptions", "feat.mountOptions.no-fs-specific")
def t_features_mount_options(ctx):
    f = features(ctx)
    opts = f.get("mountOptions")
    if not opts:
        raise Skip("no mountOptions listed")
    bad_names = [o for o in opts if "=" in o or o in FS_SPECIFIC]
    ctx.check("feat.mountOptions.no-fs-specific", not bad_names,
              f"filesystem-specific: {bad_names}" if bad_names else
              f"{len(opts)} options, none filesystem-specific")
    idx = {o: i for i, o in enumerate(opts)}
    bad = each_ok(ctx, "opt", opts, lambda o: mount_for_option(ctx, o, idx[o]))
    ctx.check("feat.mountOptions", not bad,
              f"listed but refused: {bad[:8]}" + (f" (+{len(bad) - 8})" if len(bad) > 8 else "")
              if bad else f"all {len(opts)} listed options accepted in config.json")


@test("featl.namespaces")
def t_features_namespaces(ctx):
    f = features(ctx)
    nss = (f.get("linux") or {}).get("namespaces")
    if not nss:
        raise Skip("no namespaces listed")
    short = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
             "user": "user", "cgroup": "cgroup", "time": "time"}
    testable = [n for n in nss if os.path.exists(f"/proc/self/ns/{short.get(n, n)}")]

    def mod_for(n):
        def mod(cfg, c):
            types = {x["type"] for x in cfg["linux"]["namespaces"]}
            if n not in types:
                cfg["linux"]["namespaces"].append({"type": n})
            if n == "user":
                cfg["linux"]["uidMappings"] = cfg["linux"]["gidMappings"] = \
                    [{"containerID": 0, "hostID": 100000, "size": 65536}]
        return mod
    bad = each_ok(ctx, "ns", testable, mod_for)
    ctx.check("featl.namespaces", not bad, f"refused: {bad}" if bad else
              f"{len(testable)} listed namespace types accepted")


@test("featl.capabilities")
def t_features_caps(ctx):
    f = features(ctx)
    caps = (f.get("linux") or {}).get("capabilities")
    if not caps:
        raise Skip("no capabilities listed")
    from .tests_process import CAP_NAMES
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    mine = int(status_fields(open("/proc/self/status").read()).get("CapBnd", "0"), 16)
    # only what this host can grant at all (the suite's own bounding set)
    caps = [n for n in caps if n not in CAP_NAMES or mine >> CAP_NAMES.index(n) & 1]
    c = ctx.container("c", args=["/bin/cat", "/proc/self/status"])
    c.config["process"]["capabilities"] = {"bounding": caps, "permitted": caps,
                                           "effective": caps}
    r = c.create()
    if not r.ok:
        ctx.fail("featl.capabilities", f"create with all listed caps failed: {c.diag(r)[:200]}")
        return
    c.must_start()
    c.wait()
    bnd = int(status_fields(c.stdout()).get("CapBnd", "0"), 16)
    missing = [n for n in caps if n in CAP_NAMES and CAP_NAMES.index(n) <= last
               and not bnd >> CAP_NAMES.index(n) & 1]
    ctx.check("featl.capabilities", not missing, f"listed but not granted: {missing}" if missing
              else f"all {len(caps)} listed capabilities granted")


def seccomp_mod(rule=None, archs=None, flags=None, default="SCMP_ACT_ALLOW"):
    def mod(cfg, c):
        sc = {"defaultAction": default, "architectures": archs or ["SCMP_ARCH_X86_64"],
              "syscalls": [rule] if rule else []}
        if flags:
            sc["flags"] = flags
        cfg["linux"]["seccomp"] = sc
    return mod


@test("featl.seccomp.actions", "featl.seccomp.operators", "featl.seccomp.archs",
      "featl.seccomp.knownFlags", "featl.seccomp.supportedFlags")
def t_features_seccomp(ctx):
    f = features(ctx)
    sc = (f.get("linux") or {}).get("seccomp") or {}
    if not sc:
        raise Skip("no seccomp features listed")
    agent_path = os.path.join(ctx.dir, "agent.sock")
    agent = Agent(agent_path)
    ctx.cleanups.append(agent.close)

    def action_mod(a):
        if a == "SCMP_ACT_NOTIFY":
            def mod(cfg, c):
                seccomp_mod({"names": ["swapoff"], "action": a})(cfg, c)
                cfg["linux"]["seccomp"]["listenerPath"] = agent_path
            return mod
        if a == "SCMP_ACT_ALLOW":
            return seccomp_mod({"names": ALLOW, "action": a}, default="SCMP_ACT_ERRNO")
        return seccomp_mod({"names": ["swapoff"], "action": a})
    for key, req, mod_for in (
            ("actions", "featl.seccomp.actions", action_mod),
            ("operators", "featl.seccomp.operators",
             lambda op: seccomp_mod({"names": ["umask"], "action": "SCMP_ACT_ERRNO",
                                     "args": [{"index": 0, "value": 4095, "valueTwo": 1,
                                               "op": op}]})),
            ("archs", "featl.seccomp.archs",
             lambda a: seccomp_mod({"names": ["swapoff"], "action": "SCMP_ACT_ERRNO"},
                                   archs=["SCMP_ARCH_X86_64", a]))):
        items = sc.get(key)
        if not items:
            ctx.skip(req, f"no {key} listed")
            continue
        # actions differ per item: they cannot share one container
        if key == "archs":
            bad = each_ok(ctx, key, items, mod_for)
        else:
            bad = []
            for i, it in enumerate(items):
                ok, diag = create_ok(ctx, f"{key}-{i}", mod_for(it))
                if not ok:
                    bad.append(f"{it}: {diag[:80]}")
        ctx.check(req, not bad, f"refused: {bad}" if bad else f"all {len(items)} {key} accepted")
    known, supported = sc.get("knownFlags"), sc.get("supportedFlags")

    def flag_mod(fl):
        if fl == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV":
            def mod(cfg, c):
                seccomp_mod({"names": ["swapoff"], "action": "SCMP_ACT_NOTIFY"}, flags=[fl])(cfg, c)
                cfg["linux"]["seccomp"]["listenerPath"] = agent_path
            return mod
        return seccomp_mod({"names": ["swapoff"], "action": "SCMP_ACT_ERRNO"}, flags=[fl])
    results = {}
    for i, fl in enumerate(sorted(set(known or []) | set(supported or []))):
        results[fl] = create_ok(ctx, f"flag-{i}", flag_mod(fl))
    if supported is None:
        ctx.skip("featl.seccomp.supportedFlags", "no supportedFlags listed")
    else:
        bad = [f"{fl}: {results[fl][1][:80]}" for fl in supported if not results[fl][0]]
        ctx.check("featl.seccomp.supportedFlags", not bad, f"refused: {bad}" if bad else
                  f"all {len(supported)} supported flags work")
    if known is None:
        ctx.skip("featl.seccomp.knownFlags", "no knownFlags listed")
    else:
        bad = [f"{fl}: {results[fl][1][:80]}" for fl in known
               if not results[fl][0] and (supported is None or fl in supported)]
        ctx.check("featl.seccomp.knownFlags", not bad, f"refused: {bad}" if bad else
                  f"{len(known)} known flags recognized (those the host supports work)")


@test("featl.memoryPolicy.modes", "featl.memoryPolicy.flags")
def t_features_mempolicy(ctx):
    f = features(ctx)
    mp = (f.get("linux") or {}).get("memoryPolicy") or {}
    if not mp:
        raise Skip("no memoryPolicy features listed")
    no_nodes = {"MPOL_DEFAULT", "MPOL_LOCAL"}
    for key, req in (("modes", "featl.memoryPolicy.modes"), ("flags", "featl.memoryPolicy.flags")):
        items = mp.get(key)
        if not items:
            ctx.skip(req, f"no {key} listed")
            continue
        bad = []
        for i, it in enumerate(items):
            if key == "modes":
                pol = {"mode": it} if it in no_nodes else {"mode": it, "nodes": "0"}
            else:
                pol = {"mode": "MPOL_BIND", "nodes": "0", "flags": [it]}
            ok, diag = create_ok(ctx, f"{key}-{i}", lambda cfg, c, pol=pol:
                                 cfg["linux"].__setitem__("memoryPolicy", pol))
            if not ok:
                bad.append(f"{it}: {diag[:80]}")
        ctx.check(req, not bad, f"refused: {bad}" if bad else f"all {len(items)} {key} accepted")


@test("featl.mountExtensions.idmap")
def t_features_idmap(ctx):
    f = features(ctx)
    enabled = (((f.get("linux") or {}).get("mountExtensions") or {}).get("idmap") or {}) \
        .get("enabled")
    src = ctx.mkdir("src")
    with open(os.path.join(src, "f"), "w") as fh:
        fh.write("x")
    c = ctx.container("c", args=["/bin/stat", "-c", "%u", "/mnt/i/f"])
    os.makedirs(c.rootfs_path("/mnt/i"))
    c.config["mounts"].append({"destination": "/mnt/i", "type": "bind", "source": src,
                               "options": ["bind", "idmap"],
                               "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
                               "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}]})
    r = c.create()
    acts = False
    if r.ok:
        c.must_start()
        c.wait()
        acts = c.stdout().strip() not in ("0", "")
    if acts:
        ctx.check("featl.mountExtensions.idmap", enabled is True,
                  f"the runtime applies mount mappings; idmap.enabled={enabled!r}")
    else:
        ctx.check("featl.mountExtensions.idmap", True,
                  f"the runtime does not apply mount mappings; idmap.enabled={enabled!r}")
