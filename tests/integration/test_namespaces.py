"""linux.namespaces, uid/gid mappings, timeOffsets: seen from inside the container."""

import os
import subprocess

import pytest

from support import Background, host_ns, output, run, sections

pytestmark = pytest.mark.integration

# config type -> name under /proc/<pid>/ns
NS = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
      "cgroup": "cgroup", "time": "time", "user": "user"}

SHOW_NS = "for n in pid net mnt ipc uts cgroup time user; do echo $n $(readlink /proc/self/ns/$n); done"


def ns_inodes(text):
    """{name: inode} from lines "net net:[4026531833]"."""
    out = {}
    for line in text.splitlines():
        name, _, link = line.partition(" ")
        if link.startswith(name + ":["):
            out[name] = int(link[len(name) + 2:-1])
    return out


def set_namespaces(bundle, *kinds, **paths):
    bundle.config["linux"]["namespaces"] = (
        [{"type": k} for k in kinds] + [{"type": k, "path": p} for k, p in paths.items()])


def test_new_namespaces_differ_from_the_host(runtime, bundle):
    set_namespaces(bundle, "pid", "network", "mount", "ipc", "uts", "cgroup", "time")
    bundle.sh(SHOW_NS + "; echo pid1 $$")
    out = output(runtime, bundle)
    inodes = ns_inodes(out)
    for name in ("pid", "net", "mnt", "ipc", "uts", "cgroup", "time"):
        assert inodes[name] != host_ns(name), f"{name} namespace is the host's"
    assert inodes["user"] == host_ns("user")
    assert "pid1 1\n" in out


def test_namespaces_not_listed_are_the_hosts(runtime, bundle):
    set_namespaces(bundle, "mount")
    del bundle.config["hostname"]
    bundle.sh(SHOW_NS)
    inodes = ns_inodes(output(runtime, bundle))
    assert inodes["mnt"] != host_ns("mnt")
    for name in ("pid", "net", "ipc", "uts", "cgroup", "time", "user"):
        assert inodes[name] == host_ns(name), f"{name} namespace is not the host's"


def test_join_namespaces_of_another_container(runtime, make_bundle, tmp_path):
    first = make_bundle()
    first.config["hostname"] = "first"
    first.sh("echo 1 > /dev/shm/x; exec sleep 30")
    a = Background(runtime, first, tmp_path)
    try:
        second = make_bundle()
        del second.config["hostname"]
        set_namespaces(second, "mount", **{k: f"/proc/{a.pid}/ns/{NS[k]}"
                                           for k in ("network", "ipc", "uts", "pid")})
        second.sh(SHOW_NS + "; echo === host; hostname; echo === init; cat /proc/1/cmdline;"
                  " echo; echo === self; echo $$")
        out = output(runtime, second)
        inodes = ns_inodes(out)
        for name in ("net", "ipc", "uts", "pid"):
            assert inodes[name] == host_ns(name, a.pid), f"{name} namespace not joined"
        assert inodes["mnt"] not in (host_ns("mnt"), host_ns("mnt", a.pid))
        sec = sections(out)
        assert sec["host"].strip() == "first"
        # pid 1 of the joined pid namespace is the first container's program
        assert sec["init"].split("\0")[0] == "sleep"
        assert int(sec["self"]) > 1
    finally:
        a.delete()


@pytest.fixture
def held_netns(tmp_path):
    """A network namespace made by unshare(1) and held by a bind mount on a file."""
    path = str(tmp_path / "netns")
    open(path, "w").close()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=True)


def test_join_namespace_held_by_a_bind_mount(runtime, bundle, held_netns):
    set_namespaces(bundle, "pid", "mount", "ipc", "uts", network=held_netns)
    bundle.sh(SHOW_NS + "; echo === links; ls /sys/class/net")
    out = output(runtime, bundle)
    assert ns_inodes(out)["net"] == os.stat(held_netns).st_ino != host_ns("net")
    assert sections(out)["links"].split() == ["lo"]


def test_user_namespace_mappings(runtime, make_bundle, public_dir):
    bundle = make_bundle(parent=public_dir)
    shared = os.path.join(public_dir, "shared")
    os.mkdir(shared, 0o777)
    os.chmod(shared, 0o777)
    # the rootfs belongs to the host's root, unmapped: its mount points must exist
    os.mkdir(os.path.join(bundle.rootfs, "shared"))
    set_namespaces(bundle, "pid", "network", "mount", "ipc", "uts", "user", "cgroup")
    lin = bundle.config["linux"]
    lin["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    lin["gidMappings"] = [{"containerID": 0, "hostID": 210000, "size": 65536}]
    bundle.config["mounts"].append({"destination": "/shared", "type": "bind", "source": shared,
                                    "options": ["rbind", "rw"]})
    for caps in bundle.process["capabilities"].values():
        caps.append("CAP_CHOWN")
    bundle.sh(SHOW_NS + "; echo === uid_map; cat /proc/self/uid_map; echo === gid_map;"
              " cat /proc/self/gid_map; echo === id; id -u; id -g;"
              " touch /shared/made-inside; chown 1000:1000 /shared/made-inside;"
              " mkdir /shared/dir")
    # umask 0: see test_user_namespace_with_the_default_umask
    bundle.write()
    out = runtime("run", "--bundle", bundle.path, bundle.id, umask=0).stdout
    sec = sections(out)
    assert ns_inodes(out)["user"] != host_ns("user")
    assert sec["uid_map"].split() == ["0", "200000", "65536"]
    assert sec["gid_map"].split() == ["0", "210000", "65536"]
    assert sec["id"].split() == ["0", "0"]
    st = os.stat(os.path.join(shared, "made-inside"))
    assert (st.st_uid, st.st_gid) == (201000, 211000)
    st = os.stat(os.path.join(shared, "dir"))
    assert (st.st_uid, st.st_gid) == (200000, 210000)


def userns_bundle(make_bundle, public_dir):
    bundle = make_bundle(parent=public_dir)
    set_namespaces(bundle, "pid", "network", "mount", "ipc", "uts", "user")
    lin = bundle.config["linux"]
    lin["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    lin["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    return bundle


def test_user_namespace_with_the_default_umask(runtime, make_bundle, public_dir):
    bundle = userns_bundle(make_bundle, public_dir).sh("id -u")
    bundle.write()
    assert runtime("run", "--bundle", bundle.path, bundle.id, umask=0o022).stdout == "0\n"


def test_time_offsets(runtime, bundle):
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    set_namespaces(bundle, "pid", "network", "mount", "ipc", "uts", "time")
    bundle.config["linux"]["timeOffsets"] = {
        "monotonic": {"secs": 86400, "nanosecs": 0},
        "boottime": {"secs": 1000000, "nanosecs": 500},
    }
    bundle.sh("cat /proc/self/timens_offsets; echo === uptime; cat /proc/uptime")
    sec = sections("=== offsets\n" + output(runtime, bundle))
    offsets = {line.split()[0]: line.split()[1:] for line in sec["offsets"].splitlines()}
    assert offsets["monotonic"] == ["86400", "0"]
    assert offsets["boottime"] == ["1000000", "500"]
    uptime = float(sec["uptime"].split()[0])
    assert host_uptime + 1000000 <= uptime < host_uptime + 1000000 + 60


def test_time_offsets_with_a_user_namespace(runtime, make_bundle, public_dir):
    """The time namespace belongs to the new user namespace: the offsets are written
    with its root's CAP_SYS_TIME, before any process enters it."""
    bundle = userns_bundle(make_bundle, public_dir)
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 0},
                                             "boottime": {"secs": 172800, "nanosecs": 0}}
    bundle.sh("cat /proc/self/timens_offsets; id -u")
    bundle.write()
    out = runtime("run", "--bundle", bundle.path, bundle.id, umask=0o022).stdout.splitlines()
    assert [line.split() for line in out] == [["monotonic", "86400", "0"],
                                              ["boottime", "172800", "0"], ["0"]]


def test_joining_another_containers_user_namespace(runtime, make_bundle, public_dir, tmp_path):
    """A container joining the user namespace of another (no mappings of its own):
    its setup runs as that namespace's root (a /dev of its own), it joins the host's
    network namespace, which that user namespace does not own (joined first, with
    the host's capabilities), and a recursive idmapped bind takes the joined
    namespace's mapping."""
    a = userns_bundle(make_bundle, public_dir)
    a.args("sleep", "60")
    first = Background(runtime, a, tmp_path)
    try:
        src = os.path.join(public_dir, "idsrc")
        os.mkdir(src)
        with open(os.path.join(src, "by-host-root"), "w") as f:
            f.write("x")
        b = make_bundle(parent=public_dir)
        os.mkdir(os.path.join(b.rootfs, "idm"))
        set_namespaces(b, "pid", "mount", "ipc", "uts", user=f"/proc/{first.pid}/ns/user",
                       network=f"/proc/{os.getpid()}/ns/net")
        b.config["mounts"].append({"destination": "/idm", "type": "bind", "source": src,
                                   "options": ["rbind", "idmap"]})
        b.sh(SHOW_NS + "; echo === id; id -u; ls -d /dev/pts /dev/null;"
             " stat -c %u /idm/by-host-root")
        b.write()
        out = runtime("run", "--bundle", b.path, b.id, umask=0o022).stdout
    finally:
        first.delete()
    ns = ns_inodes(out)
    assert ns["user"] != host_ns("user") and ns["net"] == host_ns("net")
    # root of the joined namespace; the host's root owns the file, seen as 0 through
    # the idmapped mount (it would be the overflow id without it)
    assert sections(out)["id"].split() == ["0", "/dev/null", "/dev/pts", "0"]


def test_loopback_is_up_in_a_new_network_namespace(runtime, bundle):
    bundle.sh("cat /sys/class/net/lo/flags; ip -o -4 addr show dev lo")
    out = output(runtime, bundle).splitlines()
    assert int(out[0], 16) & 0x1, "IFF_UP not set on lo"
    assert "inet 127.0.0.1/8" in out[1]


def test_hostname_domainname_and_sysctl(runtime, bundle):
    with open("/proc/sys/kernel/hostname") as f:
        host_name = f.read()
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host_forward = f.read()
    bundle.config["hostname"] = "box"
    bundle.config["domainname"] = "example.test"
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1",
                                        "kernel.shmmax": "123456789",
                                        "net.ipv4.conf.lo.forwarding": "1"}
    bundle.sh("hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward"
              " /proc/sys/kernel/shmmax /proc/sys/net/ipv4/conf/lo/forwarding")
    assert output(runtime, bundle).split() == ["box", "example.test", "1", "123456789", "1"]
    # the host's own values did not change
    with open("/proc/sys/kernel/hostname") as f:
        assert f.read() == host_name
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host_forward


@pytest.mark.parametrize("key,ns", [("net.ipv4.ip_forward", "network"),
                                    ("kernel.shmmax", "ipc")])
def test_sysctl_of_a_namespace_the_container_shares_with_the_host(runtime, bundle, key, ns):
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] != ns]
    bundle.config["linux"]["sysctl"] = {key: "1"}
    res = run(runtime, bundle, check=False)
    assert res.returncode == 1
    assert key in res.stderr and f"{ns} namespace" in res.stderr.lower()
    assert runtime.ids() == []


def test_hostname_without_uts_namespace_fails(runtime, bundle):
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] != "uts"]
    res = run(runtime, bundle, check=False)
    assert res.returncode == 1
    assert "hostname" in res.stderr and "uts namespace" in res.stderr.lower()
    assert runtime.ids() == []
