"""root, mounts, maskedPaths and readonlyPaths: seen from inside the container."""

import os
import subprocess

import pytest

from support import (PREFIX, Background, host_ns, output, parse_mountinfo, sections,
                      wait_for)

pytestmark = pytest.mark.integration

MOUNTINFO = "cat /proc/self/mountinfo"


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return parse_mountinfo(f.read())


def mount_tmpfs(path):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", path], check=True)


def umount(path):
    subprocess.run(["umount", "-l", path], check=True)


# -- root -------------------------------------------------------------------------------
def test_absolute_root_path(runtime, bundle):
    with open(os.path.join(bundle.rootfs, "marker"), "w") as f:
        f.write("absolute\n")
    bundle.config["root"]["path"] = bundle.rootfs
    bundle.args("cat", "/marker")
    assert output(runtime, bundle) == "absolute\n"


def test_relative_root_path(runtime, bundle):
    os.rename(bundle.rootfs, os.path.join(bundle.path, "other"))
    with open(os.path.join(bundle.path, "other", "marker"), "w") as f:
        f.write("relative\n")
    bundle.config["root"]["path"] = "other"
    bundle.args("cat", "/marker")
    assert output(runtime, bundle) == "relative\n"


def test_readonly_root(runtime, bundle):
    bundle.config["root"]["readonly"] = True
    bundle.sh("touch /x 2>&1; echo rc=$?; touch /dev/shm/ok && echo tmpfs-writable; " + MOUNTINFO)
    out = output(runtime, bundle)
    assert "Read-only file system" in out and "rc=1" in out
    assert "tmpfs-writable" in out
    assert "ro" in parse_mountinfo(out)["/"].options
    assert not os.path.exists(os.path.join(bundle.rootfs, "x"))


def test_writable_root(runtime, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.sh("touch /made-here && " + MOUNTINFO)
    assert "rw" in parse_mountinfo(output(runtime, bundle))["/"].options
    assert os.path.exists(os.path.join(bundle.rootfs, "made-here"))


@pytest.mark.parametrize("propagation,expected", [
    ("shared", "shared"), ("rshared", "shared"), ("private", "private"),
    ("rprivate", "private"), ("unbindable", "unbindable"),
])
def test_rootfs_propagation(runtime, bundle, propagation, expected):
    bundle.config["linux"]["rootfsPropagation"] = propagation
    bundle.args("cat", "/proc/self/mountinfo")
    assert parse_mountinfo(output(runtime, bundle))["/"].propagation == expected


# -- mounts ------------------------------------------------------------------------------
def test_mount_types_and_options(runtime, bundle):
    data = os.path.join(bundle.path, "data")       # relative source: resolved in the bundle
    os.mkdir(data)
    with open(os.path.join(data, "in-data"), "w") as f:
        f.write("data\n")
    single = os.path.join(bundle.path, "single-file")
    with open(single, "w") as f:
        f.write("single\n")
    os.mkdir(os.path.join(bundle.rootfs, "etc", "sub"))
    with open(os.path.join(bundle.rootfs, "etc", "sub", "kept"), "w") as f:
        f.write("kept\n")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": "data",
         "options": ["bind", "ro", "nosuid", "nodev", "noexec"]},
        {"destination": "/data-rw", "type": "none", "source": "data", "options": ["rbind"]},
        {"destination": "/new/deep/file", "source": single, "options": ["bind", "ro"]},
        {"destination": "/made/dir", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=1m", "mode=700", "nodev"]},
        {"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]},
    ]
    bundle.sh(
        "echo === mountinfo; cat /proc/self/mountinfo;"
        " echo === data; cat /data/in-data; touch /data/x 2>&1;"
        " echo === data-rw; touch /data-rw/written && echo written;"
        " echo === file; cat /new/deep/file;"
        " echo === tmpfs; stat -c %a /made/dir;"
        " echo === etc; grep ^root: /etc/passwd; cat /etc/sub/kept; touch /etc/new && echo etc-rw;"
        " echo === mqueue; ls -d /dev/mqueue")
    out = output(runtime, bundle)
    sec = sections(out)
    mounts = parse_mountinfo(sec["mountinfo"])

    assert mounts["/data"].root.endswith(data) or mounts["/data"].root == data
    assert {"ro", "nosuid", "nodev", "noexec"} <= mounts["/data"].options
    assert sec["data"].startswith("data\n") and "Read-only file system" in sec["data"]
    assert "rw" in mounts["/data-rw"].options and "nosuid" not in mounts["/data-rw"].options
    assert sec["data-rw"] == "written\n" and os.path.exists(os.path.join(data, "written"))

    assert mounts["/new/deep/file"].root.endswith("/single-file")
    assert "ro" in mounts["/new/deep/file"].options
    assert sec["file"] == "single\n"
    # missing destinations were made inside the rootfs, with the source's type
    assert os.path.isfile(os.path.join(bundle.rootfs, "new/deep/file"))
    assert os.path.isdir(os.path.join(bundle.rootfs, "made/dir"))

    tmp = mounts["/made/dir"]
    assert tmp.fstype == "tmpfs" and "nodev" in tmp.options
    assert {"size=1024k", "mode=700"} <= tmp.super_options
    assert sec["tmpfs"].strip() == "700"

    assert mounts["/etc"].fstype == "tmpfs"
    assert sec["etc"] == "root:x:0:0:root:/root:/bin/sh\nkept\netc-rw\n"
    assert not os.path.exists(os.path.join(bundle.rootfs, "etc", "new"))

    for point, fstype in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev", "tmpfs"),
                          ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs"), ("/dev/mqueue", "mqueue")):
        assert mounts[point].fstype == fstype, point
    assert {"nosuid", "noexec"} <= mounts["/dev/pts"].options
    assert {"gid=5", "mode=620", "ptmxmode=666"} <= mounts["/dev/pts"].super_options
    assert "ro" in mounts["/sys"].options
    # nothing was mounted on the host
    assert not any(p.startswith(bundle.path) for p in host_mounts())


@pytest.fixture
def tree_with_submount(tmp_path):
    """src/ with a file, and a tmpfs mounted on src/sub holding another."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "top").write_text("top\n")
    mount_tmpfs(str(src / "sub"))
    try:
        (src / "sub" / "inner").write_text("inner\n")
        yield str(src)
    finally:
        umount(str(src / "sub"))


def test_recursive_options(runtime, bundle, tree_with_submount):
    src = tree_with_submount
    bundle.config["mounts"] += [
        {"destination": "/rro", "type": "bind", "source": src, "options": ["rbind", "rro"]},
        {"destination": "/ro", "type": "bind", "source": src, "options": ["rbind", "ro"]},
        {"destination": "/plain", "type": "bind", "source": src, "options": ["bind"]},
        {"destination": "/rnoexec", "type": "bind", "source": src,
         "options": ["rbind", "rnosuid", "rnoexec"]},
    ]
    bundle.sh("echo === mountinfo; cat /proc/self/mountinfo; echo === plain; ls /plain/sub;"
              " echo === rro; cat /rro/sub/inner; touch /rro/sub/x 2>&1; true")
    sec = sections(output(runtime, bundle))
    mounts = parse_mountinfo(sec["mountinfo"])
    assert "ro" in mounts["/rro"].options and "ro" in mounts["/rro/sub"].options
    assert "ro" in mounts["/ro"].options and "rw" in mounts["/ro/sub"].options
    assert "/plain/sub" not in mounts and sec["plain"] == ""
    assert {"nosuid", "noexec"} <= mounts["/rnoexec"].options
    assert {"nosuid", "noexec"} <= mounts["/rnoexec/sub"].options
    assert sec["rro"].startswith("inner\n") and "Read-only file system" in sec["rro"]


@pytest.fixture
def shared_dir(tmp_path):
    """A host directory that is a shared mount point."""
    path = str(tmp_path / "shared")
    os.mkdir(path)
    subprocess.run(["mount", "--bind", path, path], check=True)
    try:
        subprocess.run(["mount", "--make-shared", path], check=True)
        yield path
    finally:
        umount(path)


def test_mount_propagation_options(runtime, bundle, tmp_path, shared_dir):
    for name in ("late-slave", "late-private"):
        os.mkdir(os.path.join(shared_dir, name))
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    bundle.config["mounts"] += [
        {"destination": "/slave", "type": "bind", "source": shared_dir, "options": ["rbind", "rslave"]},
        {"destination": "/private", "type": "bind", "source": shared_dir,
         "options": ["rbind", "rprivate"]},
        {"destination": "/shared", "type": "bind", "source": shared_dir, "options": ["rbind", "shared"]},
        {"destination": "/ctl", "type": "bind", "source": str(ctl), "options": ["bind"]},
    ]
    bundle.sh("touch /ctl/ready; while [ ! -e /ctl/go ]; do usleep 10000; done;"
              " echo === mountinfo; cat /proc/self/mountinfo;"
              " echo === slave; ls /slave/late-slave; echo === private; ls /private/late-private")
    c = Background(runtime, bundle, tmp_path)
    try:
        wait_for(lambda: (ctl / "ready").exists(), what="container ready")
        # mounted on the host after the container's mounts were made
        mount_tmpfs(os.path.join(shared_dir, "late-slave"))
        mount_tmpfs(os.path.join(shared_dir, "late-private"))
        try:
            for name in ("late-slave", "late-private"):
                with open(os.path.join(shared_dir, name, "seen"), "w"):
                    pass
            (ctl / "go").touch()
            c.wait()
        finally:
            umount(os.path.join(shared_dir, "late-slave"))
            umount(os.path.join(shared_dir, "late-private"))
        sec = sections(c.output())
        mounts = parse_mountinfo(sec["mountinfo"])
        assert mounts["/slave"].propagation == "slave"
        assert mounts["/private"].propagation == "private"
        assert "shared" in mounts["/shared"].propagation
        assert sec["slave"].split() == ["seen"]
        assert sec["private"].split() == []
    finally:
        c.delete()


@pytest.fixture
def host_target():
    """A host directory a malicious rootfs symlink points at."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="rt-int-escape-", dir="/tmp")
    with open(os.path.join(path, "host-file"), "w") as f:
        f.write("host\n")
    yield path
    shutil.rmtree(path)


def test_symlink_destinations_stay_inside_the_rootfs(runtime, bundle, host_target, tmp_path):
    os.symlink(host_target, os.path.join(bundle.rootfs, "evil"))
    os.symlink("../../../../../../../.." + host_target, os.path.join(bundle.rootfs, "evil-rel"))
    src = tmp_path / "bind-src"
    src.mkdir()
    (src / "from-bind").write_text("bind\n")
    bundle.config["mounts"] += [
        {"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/evil-rel/sub", "type": "bind", "source": str(src), "options": ["bind"]},
    ]
    before_mounts = set(host_mounts())
    bundle.sh("echo === mountinfo; cat /proc/self/mountinfo; echo === evil; touch /evil/written;"
              " ls /evil; echo === rel; ls /evil-rel/sub")
    sec = sections(output(runtime, bundle))
    mounts = parse_mountinfo(sec["mountinfo"])
    # the mounts are on the symlinks' targets resolved inside the rootfs
    assert mounts[host_target].fstype == "tmpfs"
    assert mounts[host_target + "/sub"].root.endswith("/bind-src")
    # both links name the same directory: the bind is on top of the tmpfs
    assert sec["evil"].split() == ["sub", "written"]
    assert sec["rel"].split() == ["from-bind"]
    # the host's directory is untouched and nothing was mounted on the host
    assert os.listdir(host_target) == ["host-file"]
    assert set(host_mounts()) == before_mounts
    # the link's target was made in the rootfs ("sub" was made in the tmpfs on it)
    assert os.listdir(os.path.join(bundle.rootfs, host_target.lstrip("/"))) == []


@pytest.mark.parametrize("cgroupns", [False, True], ids=["host-cgroupns", "private-cgroupns"])
def test_cgroup_mount_shows_the_containers_cgroup(runtime, bundle, cgroupns):
    if cgroupns:
        bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.sh("echo === mountinfo; cat /proc/self/mountinfo; echo === procs;"
              " cat /sys/fs/cgroup/pids/cgroup.procs; echo === self; cat /proc/self/cgroup;"
              " echo === write; mkdir /sys/fs/cgroup/pids/x 2>&1; true")
    sec = sections(output(runtime, bundle))
    mounts = parse_mountinfo(sec["mountinfo"])
    own = f"/{PREFIX}/{bundle.id}"
    for ctrl in ("memory", "pids", "cpu", "devices", "freezer"):
        m = mounts[f"/sys/fs/cgroup/{ctrl}"]
        assert m.fstype == "cgroup" and ctrl in m.super_options
        assert m.root == ("/" if cgroupns else own)
        assert "ro" in m.options
    # the shell (pid 1) and cat are the only processes of the container's cgroup
    assert "1" in sec["procs"].split() and len(sec["procs"].split()) == 2
    memory = [line for line in sec["self"].splitlines() if ":memory:" in line][0]
    assert memory.endswith(":/" if cgroupns else ":" + own)
    assert "Read-only file system" in sec["write"]


def test_readonly_dev(runtime, bundle):
    """"ro" on the /dev tmpfs: the runtime still makes its nodes, links and
    sub-mounts (as runc: read-write first, read-only at the end), and the container
    sees a read-only /dev with working nodes."""
    dev = next(m for m in bundle.config["mounts"] if m["destination"] == "/dev")
    dev["options"] = list(dev.get("options", [])) + ["ro"]
    bundle.sh("touch /dev/new 2>/dev/null && echo writable || echo read-only;"
              " echo x > /dev/null && echo null-ok; ls -d /dev/pts /dev/shm;"
              " head -c1 /dev/zero | wc -c; readlink /dev/stdout")
    assert output(runtime, bundle).splitlines() == [
        "read-only", "null-ok", "/dev/pts", "/dev/shm", "1", "/proc/self/fd/1"]


def test_readonly_mount_with_a_mount_below(runtime, bundle):
    """Any read-only mount that a later mount goes under: read-write until then."""
    bundle.config["mounts"] += [
        {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "size=1m"]},
        {"destination": "/mnt/inner/deep", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=1m"]}]
    bundle.sh("touch /mnt/x 2>/dev/null && echo outer-writable || echo outer-read-only;"
              " touch /mnt/inner/deep/y && echo inner-writable")
    assert output(runtime, bundle).splitlines() == ["outer-read-only", "inner-writable"]


def test_masked_and_readonly_paths(runtime, bundle):
    with open(os.path.join(bundle.rootfs, "secret-file"), "w") as f:
        f.write("secret\n")
    os.mkdir(os.path.join(bundle.rootfs, "secret-dir"))
    with open(os.path.join(bundle.rootfs, "secret-dir", "inside"), "w") as f:
        f.write("secret\n")
    os.mkdir(os.path.join(bundle.rootfs, "ro-dir"))
    lin = bundle.config["linux"]
    lin["maskedPaths"] += ["/secret-file", "/secret-dir", "/does-not-exist"]
    lin["readonlyPaths"] += ["/ro-dir", "/missing-ro"]
    bundle.sh("echo === mountinfo; cat /proc/self/mountinfo;"
              " echo === file; cat /secret-file; echo === dir; ls -A /secret-dir;"
              " echo === dirwrite; touch /secret-dir/x 2>&1;"
              " echo === keys; wc -c < /proc/keys;"
              " echo === ro; touch /ro-dir/x 2>&1; (echo 1 > /proc/sys/vm/drop_caches) 2>&1;"
              " echo === rw; touch /tmp/x && echo ok")
    sec = sections(output(runtime, bundle))
    mounts = parse_mountinfo(sec["mountinfo"])
    assert sec["file"] == "" and sec["dir"] == ""
    assert "Read-only file system" in sec["dirwrite"]
    assert mounts["/secret-dir"].fstype == "tmpfs" and "ro" in mounts["/secret-dir"].options
    assert mounts["/secret-file"].root == "/null"
    assert sec["keys"].strip() == "0"
    assert mounts["/proc/acpi"].fstype == "tmpfs"
    assert sec["ro"].count("Read-only file system") == 2
    assert "ro" in mounts["/ro-dir"].options and "ro" in mounts["/proc/sys"].options
    assert sec["rw"] == "ok\n"
    # the files themselves are intact
    with open(os.path.join(bundle.rootfs, "secret-file")) as f:
        assert f.read() == "secret\n"


def test_mount_namespace_is_private_to_the_container(runtime, bundle):
    bundle.sh("readlink /proc/self/ns/mnt")
    assert output(runtime, bundle).strip() != f"mnt:[{host_ns('mnt')}]"


def test_no_pivot(runtime, bundle):
    with open(os.path.join(bundle.rootfs, "marker"), "w") as f:
        f.write("no-pivot\n")
    bundle.sh("cat /marker; echo === mountinfo; cat /proc/self/mountinfo")
    out = output(runtime, bundle, "--no-pivot")
    assert out.startswith("no-pivot\n")
    mounts = parse_mountinfo(sections(out)["mountinfo"])
    assert mounts["/"].root.endswith("/rootfs")
    # nothing of the host's tree is left mounted in the container
    assert not [m for m in mounts if m.startswith(("/work", "/root", "/run/netns", "/mnt/"))]
