"""config.md#configRoot, #configMounts, the Linux mount options table, and the mount-shaped
parts of config-linux.md (default filesystems, masked and read-only paths, rootfs
propagation). Every verdict comes from /proc/self/mountinfo read inside the container,
or from what the container can read and write."""

import os
import shutil

from .harness import base_config, parse_mountinfo, top_mount, write
from .registry import test

MNT = "/mnt/t"


def mountinfo_of(ctx, name, mounts, pre=None, extra_cmd=""):
    """Run a container with extra mounts; return (mountinfo list, stdout) or raise."""
    c = ctx.container(name, args=["/bin/sh", "-c",
                                  f"{extra_cmd} echo '=== mountinfo'; cat /proc/self/mountinfo"])
    for m in mounts:
        c.config["mounts"].append(m)
        if not os.path.isabs(m["destination"]):
            continue
        os.makedirs(c.rootfs_path(m["destination"]), exist_ok=True)
    if pre:
        pre(c)
    r = c.create()
    if not r.ok:
        raise MountFail(f"create failed: {c.diag(r)[:220]}")
    c.must_start()
    c.wait()
    out = c.stdout()
    head, _, mi = out.partition("=== mountinfo\n")
    return parse_mountinfo(mi), head


class MountFail(Exception):
    pass


def tmpfs(opts, dest=MNT):
    return {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": list(opts)}


def has(m, flag):
    return m is not None and flag in m["opts"]


def sup(m, flag):
    return m is not None and flag in m["super"]


# option -> (options list, predicate on the top mount at MNT, description)
SIMPLE = {
    "async": (["sync", "async"], lambda m: m and not sup(m, "sync"), "sync cleared"),
    "atime": (["noatime", "atime"], lambda m: m and not has(m, "noatime"), "noatime cleared"),
    "defaults": (["defaults"], lambda m: has(m, "rw") and not any(
        has(m, f) for f in ("nosuid", "nodev", "noexec")), "rw,suid,dev,exec"),
    "dev": (["nodev", "dev"], lambda m: m and not has(m, "nodev"), "nodev cleared"),
    "diratime": (["nodiratime", "diratime"], lambda m: m and not has(m, "nodiratime"),
                 "nodiratime cleared"),
    "dirsync": (["dirsync"], lambda m: sup(m, "dirsync"), "dirsync set"),
    "exec": (["noexec", "exec"], lambda m: m and not has(m, "noexec"), "noexec cleared"),
    "iversion": (["iversion"], lambda m: m is not None, "mounted"),
    "lazytime": (["lazytime"], lambda m: sup(m, "lazytime"), "lazytime set"),
    "loud": (["silent", "loud"], lambda m: m is not None, "mounted"),
    "noatime": (["noatime"], lambda m: has(m, "noatime"), "noatime set"),
    "nodev": (["nodev"], lambda m: has(m, "nodev"), "nodev set"),
    "nodiratime": (["nodiratime"], lambda m: has(m, "nodiratime"), "nodiratime set"),
    "noexec": (["noexec"], lambda m: has(m, "noexec"), "noexec set"),
    "noiversion": (["noiversion"], lambda m: m is not None, "mounted"),
    "nolazytime": (["lazytime", "nolazytime"], lambda m: m and not sup(m, "lazytime"),
                   "lazytime cleared"),
    "norelatime": (["norelatime"], lambda m: m is not None, "mounted"),
    "nostrictatime": (["strictatime", "nostrictatime"], lambda m: has(m, "relatime"),
                      "back to relatime"),
    "nosuid": (["nosuid"], lambda m: has(m, "nosuid"), "nosuid set"),
    "nosymfollow": (["nosymfollow"], lambda m: has(m, "nosymfollow"), "nosymfollow set"),
    "relatime": (["relatime"], lambda m: has(m, "relatime"), "relatime set"),
    "ro": (["ro"], lambda m: has(m, "ro"), "read-only"),
    "rw": (["ro", "rw"], lambda m: has(m, "rw"), "read-write"),
    "silent": (["silent"], lambda m: m is not None, "mounted"),
    "strictatime": (["strictatime"], lambda m: m and not has(m, "relatime")
                    and not has(m, "noatime"), "neither relatime nor noatime"),
    "suid": (["nosuid", "suid"], lambda m: m and not has(m, "nosuid"), "nosuid cleared"),
    "symfollow": (["nosymfollow", "symfollow"], lambda m: m and not has(m, "nosymfollow"),
                  "nosymfollow cleared"),
    "sync": (["sync"], lambda m: sup(m, "sync"), "sync set"),
}


def _simple(ctx, opt):
    opts, pred, what = SIMPLE[opt]
    try:
        mi, _ = mountinfo_of(ctx, opt, [tmpfs(opts)])
    except MountFail as e:
        ctx.fail(f"cfg.mounts.opt.{opt}", f"options {opts}: {e}")
        return
    m = top_mount(mi, MNT)
    ok = bool(pred(m)) and m is not None and m["fstype"] == "tmpfs"
    ctx.check(f"cfg.mounts.opt.{opt}", ok,
              f"tmpfs {opts}: " + (f"{what}" if ok else
                                    f"want {what}; got {','.join(m['opts']) if m else 'no mount'}"
                                    f" / {','.join(m['super']) if m else ''}"))


def _make_simple_test(opt):
    def fn(ctx):
        _simple(ctx, opt)
    fn.__name__ = f"t_opt_{opt}"
    fn.__doc__ = f"mount option {opt} on a tmpfs"
    return fn


for _o in SIMPLE:
    test(f"cfg.mounts.opt.{_o}")(_make_simple_test(_o))


# ---------------------------------------------------------------- bind fixtures

def bind_source(ctx, name, sub_opts=None, shared=False):
    """A host directory with a file and a tmpfs submount 'sub' (holding a file)."""
    src = ctx.mkdir(name)
    if shared:
        ctx.host_mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs"], src)
    write(os.path.join(src, "top-file"), "top\n")
    sub = os.path.join(src, "sub")
    os.makedirs(sub, exist_ok=True)
    o = "size=1m" + ("," + sub_opts if sub_opts else "")
    ctx.host_mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs"], sub)
    write(os.path.join(sub, "sub-file"), "sub\n")
    if sub_opts:
        ctx.host_cmd(["mount", "-o", "remount," + o, sub])
    if shared:
        ctx.host_cmd(["mount", "--make-rshared", src])
    return src


def bind(src, opts, dest=MNT):
    return {"destination": dest, "type": "bind", "source": src, "options": list(opts)}


def sub_of(mi, dest=MNT):
    return top_mount(mi, dest + "/sub")


@test("cfg.mounts.opt.bind", "cfg.mounts.opt.rbind")
def t_opt_bind(ctx):
    src = bind_source(ctx, "src")
    for opt in ("bind", "rbind"):
        try:
            mi, out = mountinfo_of(ctx, opt, [bind(src, [opt])],
                                   extra_cmd=f"cat {MNT}/top-file {MNT}/sub/sub-file 2>&1;")
        except MountFail as e:
            ctx.fail(f"cfg.mounts.opt.{opt}", str(e))
            continue
        top = top_mount(mi, MNT)
        sub = sub_of(mi)
        see_top = out.startswith("top")
        if opt == "bind":
            ok = top is not None and see_top and sub is None
            ctx.check("cfg.mounts.opt.bind", ok, f"bind: source visible={see_top}; submount "
                      f"{'carried along (should not be)' if sub else 'not carried'}")
        else:
            ok = top is not None and see_top and sub is not None and "sub" in out
            ctx.check("cfg.mounts.opt.rbind", ok, f"rbind: source visible={see_top}; submount "
                      f"{'present' if sub else 'missing'}")


PROPAGATION = {
    "shared": (lambda m: m and any(o.startswith("shared:") for o in m["optional"]), False),
    "slave": (lambda m: m and any(o.startswith("master:") for o in m["optional"])
              and not any(o.startswith("shared:") for o in m["optional"]), False),
    "private": (lambda m: m and not any(o.startswith(("shared:", "master:"))
                                        for o in m["optional"]), False),
    "unbindable": (lambda m: m and "unbindable" in m["optional"], False),
}


def _propagation(ctx, opt):
    base = opt[1:] if opt.startswith("r") and opt[1:] in PROPAGATION else opt
    pred, _ = PROPAGATION[base]
    src = bind_source(ctx, "src", shared=True)
    try:
        mi, _ = mountinfo_of(ctx, opt, [bind(src, ["rbind", opt])])
    except MountFail as e:
        ctx.fail(f"cfg.mounts.opt.{opt}", str(e))
        return
    top, sub = top_mount(mi, MNT), sub_of(mi)
    ok = bool(pred(top)) and (base == opt or bool(pred(sub)))
    desc = lambda m: " ".join(m["optional"]) or "private" if m else "missing"  # noqa: E731
    ctx.check(f"cfg.mounts.opt.{opt}", ok,
              f"rbind of a shared source + {opt}: mount [{desc(top)}]"
              + (f", submount [{desc(sub)}]" if opt != base else ""))


def _make_prop_test(opt):
    def fn(ctx):
        _propagation(ctx, opt)
    fn.__name__ = f"t_opt_{opt}"
    return fn


for _o in ("shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate",
           "runbindable"):
    test(f"cfg.mounts.opt.{_o}")(_make_prop_test(_o))


FLAGGED = "ro,nodev,nosuid,noexec,noatime,nodiratime,nosymfollow"
# recursive option -> (fixture: 'plain' or 'flags', predicate on a mount)
RECURSIVE = {
    "rro": ("plain", lambda m: has(m, "ro")),
    "rrw": ("flags", lambda m: has(m, "rw")),
    "rnosuid": ("plain", lambda m: has(m, "nosuid")),
    "rsuid": ("flags", lambda m: m and not has(m, "nosuid")),
    "rdev": ("flags", lambda m: m and not has(m, "nodev")),
    "rnoexec": ("plain", lambda m: has(m, "noexec")),
    "rexec": ("flags", lambda m: m and not has(m, "noexec")),
    "rnoatime": ("plain", lambda m: has(m, "noatime")),
    "ratime": ("flags", lambda m: m and not has(m, "noatime")),
    "rrelatime": ("flags", lambda m: has(m, "relatime")),
    "rstrictatime": ("plain", lambda m: m and not has(m, "relatime") and not has(m, "noatime")),
    "rnodiratime": ("plain", lambda m: has(m, "nodiratime")),
    "rdiratime": ("flags", lambda m: m and not has(m, "nodiratime")),
    "rnosymfollow": ("plain", lambda m: has(m, "nosymfollow")),
    "rsymfollow": ("flags", lambda m: m and not has(m, "nosymfollow")),
    "rnorelatime": ("plain", lambda m: m is not None),
    "rnostrictatime": ("plain", lambda m: m is not None),
}


def _recursive(ctx, opt):
    fixture, pred = RECURSIVE[opt]
    src = bind_source(ctx, "src", sub_opts=FLAGGED if fixture == "flags" else None)
    try:
        mi, _ = mountinfo_of(ctx, opt, [bind(src, ["rbind", opt])])
    except MountFail as e:
        ctx.fail(f"cfg.mounts.opt.{opt}", str(e))
        return
    top, sub = top_mount(mi, MNT), sub_of(mi)
    ok = bool(pred(top)) and bool(pred(sub))
    ctx.check(f"cfg.mounts.opt.{opt}", ok,
              f"rbind + {opt} over a {fixture} submount: mount "
              f"{','.join(top['opts']) if top else 'missing'}; submount "
              f"{','.join(sub['opts']) if sub else 'missing'}")


def _make_rec_test(opt):
    def fn(ctx):
        _recursive(ctx, opt)
    fn.__name__ = f"t_opt_{opt}"
    return fn


for _o in RECURSIVE:
    test(f"cfg.mounts.opt.{_o}")(_make_rec_test(_o))


@test("cfg.mounts.opt.remount")
def t_opt_remount(ctx):
    try:
        mi, _ = mountinfo_of(ctx, "c", [tmpfs(["size=1m"]), tmpfs(["remount", "ro"])])
    except MountFail as e:
        ctx.fail("cfg.mounts.opt.remount", str(e))
        return
    ms = [m for m in mi if m["mountpoint"] == MNT]
    ok = len(ms) == 1 and has(ms[0], "ro")
    ctx.check("cfg.mounts.opt.remount", ok,
              f"{len(ms)} mount(s) at {MNT}; flags {[','.join(m['opts']) for m in ms]} "
              "(want one, read-only)")


# ---------------------------------------------------------------- idmap

IDMAP = [{"containerID": 0, "hostID": 1000, "size": 100}]


def idmap_source(ctx, name, recursive=False):
    src = ctx.mkdir(name)
    write(os.path.join(src, "f0"), "x")
    write(os.path.join(src, "f1"), "x")
    os.chown(os.path.join(src, "f1"), 1, 1)
    if recursive:
        sub = os.path.join(src, "sub")
        os.makedirs(sub)
        ctx.host_mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs"], sub)
        write(os.path.join(sub, "s0"), "x")
    return src


def owners(out):
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and ":" in parts[0]:
            res[os.path.basename(parts[1])] = parts[0]
    return res


@test("cfg.mounts.opt.idmap", "cfg.mounts.idmap-mappings", "cfg.mounts.opt.ridmap",
      "cfg.mounts.ridmap-mappings")
def t_idmap(ctx):
    """A source file owned by N is seen as N + 1000 through a mount whose mappings map
    containerID 0 to hostID 1000 (the mapping is written as a user namespace's uid_map:
    source ids are the `containerID` side, as crun and runc implement it)."""
    for opt, rec in (("idmap", False), ("ridmap", True)):
        src = idmap_source(ctx, f"src-{opt}", recursive=rec)
        m = {"destination": MNT, "type": "bind", "source": src,
             "options": ["rbind" if rec else "bind", opt],
             "uidMappings": IDMAP, "gidMappings": IDMAP}
        files = f"{MNT}/f0 {MNT}/f1" + (f" {MNT}/sub/s0" if rec else "")
        try:
            _, out = mountinfo_of(ctx, opt, [m], extra_cmd=f"stat -c '%u:%g %n' {files};")
        except MountFail as e:
            ctx.fail(f"cfg.mounts.opt.{opt}", str(e))
            ctx.fail(f"cfg.mounts.{opt}-mappings", str(e))
            continue
        own = owners(out)
        want = {"f0": "1000:1000", "f1": "1001:1001"}
        if rec:
            want["s0"] = "1000:1000"
        changed = own.get("f0") not in (None, "0:0")
        ctx.check(f"cfg.mounts.opt.{opt}", changed and (not rec or own.get("s0") != "0:0"),
                  f"owners seen {own}")
        ctx.check(f"cfg.mounts.{opt}-mappings", own == want,
                  f"owners seen {own}, want {want}" + ("" if own == want else
                                                        f"; output {out.strip()[:160]!r}"))


@test("cfg.mounts.idmap-no-userns", "cfg.mounts.ridmap-no-userns", "cfg.mounts.mappings-pair")
def t_idmap_invalid(ctx):
    for opt in ("idmap", "ridmap"):
        src = idmap_source(ctx, f"src-{opt}")
        c = ctx.container(opt, args=["true"])
        os.makedirs(c.rootfs_path(MNT))
        c.config["mounts"].append({"destination": MNT, "type": "bind", "source": src,
                                   "options": ["rbind", opt]})
        ctx.expect_create_error(f"cfg.mounts.{opt}-no-userns", c,
                                f"with {opt}, no mappings and no user namespace")
    src = idmap_source(ctx, "src-pair")
    c = ctx.container("pair", args=["true"])
    os.makedirs(c.rootfs_path(MNT))
    c.config["mounts"].append({"destination": MNT, "type": "bind", "source": src,
                               "options": ["bind", "idmap"], "uidMappings": IDMAP})
    ctx.expect_create_error("cfg.mounts.mappings-pair", c, "with uidMappings but no gidMappings")


# ---------------------------------------------------------------- other mount semantics

@test("cfg.mounts.order")
def t_mount_order(ctx):
    mounts = [tmpfs(["size=1m"], "/mnt/o"), tmpfs(["size=2m"], "/mnt/o/inner"),
              tmpfs(["size=1m"], "/mnt/o2"), tmpfs(["size=2m"], "/mnt/o2")]
    try:
        mi, _ = mountinfo_of(ctx, "c", mounts)
    except MountFail as e:
        ctx.fail("cfg.mounts.order", str(e))
        return
    outer, inner, o2 = top_mount(mi, "/mnt/o"), top_mount(mi, "/mnt/o/inner"), \
        top_mount(mi, "/mnt/o2")
    ok = (outer and inner and inner["parent"] == outer["id"] and o2
          and "size=2048k" in o2["super"])
    ctx.check("cfg.mounts.order", ok,
              f"/mnt/o/inner on top of /mnt/o: {bool(inner and outer and inner['parent'] == outer['id'])};"
              f" visible /mnt/o2 is the last listed (size=2m): "
              f"{bool(o2 and 'size=2048k' in o2['super'])}")


@test("cfg.mounts.dest-relative")
def t_mount_relative_dest(ctx):
    try:
        mi, _ = mountinfo_of(ctx, "c", [tmpfs(["size=1m"], "mnt/rel")],
                             pre=lambda c: os.makedirs(c.rootfs_path("/mnt/rel")))
    except MountFail as e:
        ctx.fail("cfg.mounts.dest-relative", str(e))
        return
    m = top_mount(mi, "/mnt/rel")
    ctx.check("cfg.mounts.dest-relative", m is not None and m["fstype"] == "tmpfs",
              "destination 'mnt/rel' mounted at /mnt/rel" if m else
              "nothing mounted at /mnt/rel")


@test("cfg.mounts.bind-source-relative")
def t_mount_relative_source(ctx):
    def pre(c):
        d = os.path.join(c.bundle, "hostdata")
        os.makedirs(d)
        write(os.path.join(d, "file"), "from-bundle\n")
        c.config["mounts"].append({"destination": "/mnt/data", "type": "bind",
                                   "source": "hostdata", "options": ["bind"]})
        os.makedirs(c.rootfs_path("/mnt/data"))
    try:
        _, out = mountinfo_of(ctx, "c", [], pre=pre, extra_cmd="cat /mnt/data/file 2>&1;")
    except MountFail as e:
        ctx.fail("cfg.mounts.bind-source-relative", str(e))
        return
    ctx.check("cfg.mounts.bind-source-relative", "from-bundle" in out, f"read {out.strip()!r}")


@test("cfg.mounts.type")
def t_mount_types(ctx):
    mounts = [tmpfs(["size=1m"], "/mnt/tmp"),
              {"destination": "/mnt/proc", "type": "proc", "source": "proc"},
              {"destination": "/mnt/mq", "type": "mqueue", "source": "mqueue"}]
    try:
        mi, _ = mountinfo_of(ctx, "c", mounts)
    except MountFail as e:
        ctx.fail("cfg.mounts.type", str(e))
        return
    got = {d: (top_mount(mi, d) or {}).get("fstype") for d in ("/mnt/tmp", "/mnt/proc", "/mnt/mq")}
    ok = got == {"/mnt/tmp": "tmpfs", "/mnt/proc": "proc", "/mnt/mq": "mqueue"}
    ctx.check("cfg.mounts.type", ok, f"types {got}")


@test("cfg.mounts.custom-mount8", "cfg.mounts.fs-specific")
def t_mount_custom(ctx):
    try:
        mi, _ = mountinfo_of(ctx, "m8", [tmpfs(["size=1m", "auto", "nouser"])])
        m = top_mount(mi, MNT)
        ctx.check("cfg.mounts.custom-mount8", m is not None and m["fstype"] == "tmpfs",
                  "tmpfs with auto,nouser mounted")
    except MountFail as e:
        ctx.fail("cfg.mounts.custom-mount8", f"tmpfs with auto,nouser: {e}")
    try:
        mi, _ = mountinfo_of(ctx, "fs", [tmpfs(["size=1m", "mode=0700", "nr_inodes=1000"])])
        m = top_mount(mi, MNT)
        ok = m is not None and {"size=1024k", "mode=700", "nr_inodes=1000"} <= set(m["super"])
        ctx.check("cfg.mounts.fs-specific", ok,
                  f"super options {m['super'] if m else None}")
    except MountFail as e:
        ctx.fail("cfg.mounts.fs-specific", str(e))


# ---------------------------------------------------------------- root

@test("cfg.root.readonly", "cfg.root.readonly-default")
def t_root_readonly(ctx):
    script = ("touch /rootfs-write-test 2>/dev/null && echo write=ok || echo write=fail; "
              "awk '$5 == \"/\" {print \"opts=\" $6}' /proc/self/mountinfo")
    for ro in (True, None):
        c = ctx.container("ro" if ro else "rw", config=base_config(["/bin/sh", "-c", script]))
        if ro:
            c.config["root"]["readonly"] = True
        else:
            c.config["root"].pop("readonly", None)
        out = c.run()
        got = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
        opts = got.get("opts", "").split(",")
        if ro:
            ctx.check("cfg.root.readonly", got.get("write") == "fail" and "ro" in opts,
                      f"write {got.get('write')}, / mounted {got.get('opts')}")
        else:
            ctx.check("cfg.root.readonly-default", got.get("write") == "ok" and "rw" in opts,
                      f"write {got.get('write')}, / mounted {got.get('opts')}")


@test("cfg.root.path-relative", "cfg.root.path-absolute", "cfg.root.path-exists",
      "cfg.root.required")
def t_root_path(ctx):
    c = ctx.container("rel", args=["/bin/cat", "/.conformance-rootfs"])
    os.rename(c.rootfs, os.path.join(c.bundle, "myroot"))
    c.rootfs = os.path.join(c.bundle, "myroot")
    c.config["root"]["path"] = "myroot"
    r = c.create(cwd=ctx.dir)
    if r.ok:
        c.must_start()
        c.wait()
    ctx.check("cfg.root.path-relative", r.ok and "rootfs" in c.stdout(),
              "root.path 'myroot' (runtime cwd elsewhere): "
              + ("ran" if r.ok else c.diag(r)[:200]))
    c = ctx.container("abs", args=["/bin/cat", "/.conformance-rootfs"])
    c.config["root"]["path"] = c.rootfs
    r = c.create(cwd="/")
    if r.ok:
        c.must_start()
        c.wait()
    ctx.check("cfg.root.path-absolute", r.ok and "rootfs" in c.stdout(),
              "absolute root.path: " + ("ran" if r.ok else c.diag(r)[:200]))
    c = ctx.container("missing", args=["true"])
    c.config["root"]["path"] = "no-such-dir"
    ctx.expect_create_error("cfg.root.path-exists", c, "with a missing root directory")
    c = ctx.container("noroot", args=["true"])
    del c.config["root"]
    ctx.expect_create_error("cfg.root.required", c, "without root")


@test("cfg.ociVersion")
def t_oci_versions(ctx):
    bad = []
    for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"):
        c = ctx.container("v" + v.replace(".", ""), args=["true"])
        c.config["ociVersion"] = v
        r = c.create()
        if not r.ok:
            bad.append(f"{v}: {c.diag(r)[:80]}")
        else:
            c.delete(force=True)
    ctx.check("cfg.ociVersion", not bad, "; ".join(bad) or "1.0.0, 1.1.0, 1.2.0, 1.3.0 accepted")


# ---------------------------------------------------------------- config-linux

@test("lnx.fs.defaults")
def t_default_filesystems(ctx):
    mi, _ = mountinfo_of(ctx, "c", [])
    want = {"/proc": "proc", "/sys": "sysfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs"}
    got = {p: (top_mount(mi, p) or {}).get("fstype") for p in want}
    ctx.check("lnx.fs.defaults", got == want, f"types {got} (with the usual mounts listed)")


@test("lnx.maskedPaths", "lnx.readonlyPaths")
def t_masked_readonly(ctx):
    script = ("cat /etc/secret-file 2>&1; ls /etc/secret-dir 2>&1; "
              "touch /etc/ro-dir/new 2>/dev/null && echo ro-write=ok || echo ro-write=fail; "
              "cat /etc/ro-dir/keep; echo '=== mountinfo'; cat /proc/self/mountinfo")
    c = ctx.container("c", config=base_config(["/bin/sh", "-c", script]))
    write(c.rootfs_path("/etc/secret-file"), "TOPSECRET-file\n")
    os.makedirs(c.rootfs_path("/etc/secret-dir"))
    write(c.rootfs_path("/etc/secret-dir/inner"), "TOPSECRET-dir\n")
    os.makedirs(c.rootfs_path("/etc/ro-dir"))
    write(c.rootfs_path("/etc/ro-dir/keep"), "readable\n")
    c.config["linux"]["maskedPaths"] = ["/etc/secret-file", "/etc/secret-dir"]
    c.config["linux"]["readonlyPaths"] = ["/etc/ro-dir"]
    out = c.run()
    head, _, mi = out.partition("=== mountinfo\n")
    ctx.check("lnx.maskedPaths", "TOPSECRET" not in head and "inner" not in head,
              "masked file and directory unreadable" if "TOPSECRET" not in head
              and "inner" not in head else f"read through the mask: {head[:120]!r}")
    m = top_mount(parse_mountinfo(mi), "/etc/ro-dir")
    ok = "ro-write=fail" in head and "readable" in head and has(m, "ro")
    ctx.check("lnx.readonlyPaths", ok,
              f"write refused={'ro-write=fail' in head}, still readable={'readable' in head}, "
              f"mount {','.join(m['opts']) if m else 'missing'}")


@test("lnx.maskedPaths.absolute", "lnx.readonlyPaths.absolute")
def t_masked_readonly_relative(ctx):
    c = ctx.container("masked", args=["true"])
    c.config["linux"]["maskedPaths"] = ["etc/passwd"]
    ctx.expect_create_error("lnx.maskedPaths.absolute", c, "with maskedPaths ['etc/passwd']")
    c = ctx.container("ro", args=["true"])
    c.config["linux"]["readonlyPaths"] = ["etc"]
    ctx.expect_create_error("lnx.readonlyPaths.absolute", c, "with readonlyPaths ['etc']")


def shared_rootfs(ctx, c):
    """Make c's rootfs a mount of its own (like an overlay rootfs) in a shared peer group
    with the host, so slave/shared propagation is observable."""
    d = os.path.join(c.dir, "sharedroot")
    ctx.host_mount(["-t", "tmpfs", "-o", "size=64m,mode=755", "tmpfs"], d)
    ctx.host_cmd(["mount", "--make-shared", d])
    shutil.copytree(c.rootfs, d, symlinks=True, dirs_exist_ok=True)
    c.config["root"]["path"] = d


@test("lnx.rootfsPropagation.shared", "lnx.rootfsPropagation.slave",
      "lnx.rootfsPropagation.private", "lnx.rootfsPropagation.unbindable")
def t_rootfs_propagation(ctx):
    for prop in ("shared", "slave", "private", "unbindable"):
        req = f"lnx.rootfsPropagation.{prop}"
        pred, _ = PROPAGATION[prop]
        try:
            mi, _ = mountinfo_of(ctx, prop, [], pre=lambda c: (
                shared_rootfs(ctx, c),
                c.config["linux"].__setitem__("rootfsPropagation", prop)))
        except MountFail as e:
            ctx.fail(req, str(e))
            continue
        root = top_mount(mi, "/")
        ctx.check(req, bool(pred(root)),
                  f"/ propagation [{' '.join(root['optional']) if root else '?'}]")
