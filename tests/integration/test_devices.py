"""/dev inside the container: default devices, linux.devices, links, /dev/console."""

import pytest

from support import output, parse_mountinfo, sections

pytestmark = pytest.mark.integration

# "name type major minor mode uid gid", from busybox stat (major/minor in hex)
STAT = "stat -c '%n %F %t %T %a %u %g'"


def stat_lines(text):
    out = {}
    for line in text.splitlines():
        name, rest = line.split(" ", 1)
        kind, major, minor, mode, uid, gid = rest.rsplit(" ", 5)
        out[name] = (kind, int(major, 16), int(minor, 16), mode, int(uid), int(gid))
    return out


def test_default_devices(runtime, bundle):
    bundle.sh(f"echo === stat; {STAT} /dev/null /dev/zero /dev/full /dev/random /dev/urandom"
              " /dev/tty; echo === links; for l in ptmx fd stdin stdout stderr; do"
              " echo $l $(readlink /dev/$l); done; echo === mountinfo; cat /proc/self/mountinfo;"
              " echo === use; head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok;"
              " (echo x > /dev/full) 2>&1; head -c 8 /dev/urandom | wc -c; ls /dev/fd/")
    sec = sections(output(runtime, bundle))
    st = stat_lines(sec["stat"])
    expected = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
                "urandom": (1, 9), "tty": (5, 0)}
    for name, (major, minor) in expected.items():
        assert st[f"/dev/{name}"] == ("character special file", major, minor, "666", 0, 0), name
    links = dict(line.split(" ", 1) for line in sec["links"].splitlines())
    assert links == {"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
                     "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
    # made with mknod in the container's /dev, not bind mounts of the host's nodes
    mounts = parse_mountinfo(sec["mountinfo"])
    assert not [m for m in mounts if m.startswith("/dev/") and m not in
                ("/dev/pts", "/dev/shm", "/dev/mqueue")], sorted(mounts)
    use = sec["use"].splitlines()
    assert use[:2] == ["4", "null-ok"]
    assert "No space left on device" in use[2]
    assert use[3] == "8"
    assert set(use[4:]) >= {"0", "1", "2"}


def test_linux_devices(runtime, bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/mychar", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
         "uid": 1000, "gid": 100},
        {"path": "/dev/sub/myblock", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600,
         "uid": 0, "gid": 6},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o620, "uid": 1, "gid": 1},
        # overrides the default device
        {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600,
         "uid": 65534, "gid": 65534},
    ]
    bundle.args("stat", "-c", "%n %F %t %T %a %u %g", "/dev/mychar", "/dev/sub/myblock",
                "/dev/myfifo", "/dev/zero")
    st = stat_lines(output(runtime, bundle))
    assert st["/dev/mychar"] == ("character special file", 1, 3, "640", 1000, 100)
    assert st["/dev/sub/myblock"] == ("block special file", 7, 200, "600", 0, 6)
    assert st["/dev/myfifo"][0] == "fifo" and st["/dev/myfifo"][3:] == ("620", 1, 1)
    assert st["/dev/zero"] == ("character special file", 1, 5, "600", 65534, 65534)


def test_device_cgroup_allows_linux_devices_only(runtime, bundle):
    """With the default deny-all rule, the linux.devices nodes and the default ones
    can be opened; a node the container makes itself cannot."""
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/listed", "type": "b", "major": 7, "minor": 201, "fileMode": 0o666}]
    for caps in bundle.process["capabilities"].values():
        caps.append("CAP_MKNOD")
    bundle.sh("mknod /dev/unlisted b 7 202; echo === listed; (head -c0 /dev/listed) 2>&1;"
              " echo === unlisted; (head -c0 /dev/unlisted) 2>&1; true")
    sec = sections(output(runtime, bundle))
    assert "Operation not permitted" not in sec["listed"]
    assert "Operation not permitted" in sec["unlisted"]


def test_no_console_without_a_terminal(runtime, bundle):
    bundle.sh("ls /dev/console 2>&1; ls -l /proc/self/fd/0 /proc/self/fd/1; true")
    out = output(runtime, bundle)
    assert "No such file or directory" in out.splitlines()[0]
    assert "/dev/pts" not in out


def test_devices_in_a_user_namespace_are_the_hosts_nodes(runtime, make_bundle, public_dir):
    """mknod is refused in a user namespace: the host's nodes are bind-mounted."""
    bundle = make_bundle(parent=public_dir)
    lin = bundle.config["linux"]
    lin["namespaces"].append({"type": "user"})
    lin["uidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    lin["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    bundle.sh("echo === mountinfo; cat /proc/self/mountinfo; echo === use;"
              " echo x > /dev/null && echo null-ok; head -c 3 /dev/zero | wc -c")
    # umask 0: see test_namespaces.test_user_namespace_with_the_default_umask
    sec = sections(output(runtime, bundle, umask=0))
    mounts = parse_mountinfo(sec["mountinfo"])
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        assert mounts[f"/dev/{name}"].root == f"/{name}", name
    assert sec["use"].split() == ["null-ok", "3"]
