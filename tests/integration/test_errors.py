"""Error paths: exit code 1, one line on stderr, the same line as the last JSON entry
of ``--log FILE --log-format json``, and nothing left behind."""

import json
import os

import pytest

from support import Runtime, assert_nothing_left, wait_for, wait_status

pytestmark = pytest.mark.integration


@pytest.fixture
def logged(runtime, tmp_path):
    """The ``runtime`` fixture's state root, logging JSON to a file."""
    return Runtime(runtime.root, log=tmp_path / "runtime-log.json")


def expect_error(rt, *args, contains):
    """Run a command that must fail; return its error message."""
    res = rt(*args, check=False)
    assert res.returncode == 1, res
    assert res.stderr.endswith("\n") and res.stderr.count("\n") == 1, res.stderr
    msg = res.stderr.strip()
    assert contains in msg
    with open(rt.log) as f:
        last = json.loads(f.read().splitlines()[-1])
    assert last["level"] == "error" and last["msg"] == msg
    assert set(last) == {"level", "msg", "time"}
    return msg


def create_fails(rt, bundle, contains):
    bundle.write()
    msg = expect_error(rt, "create", "--bundle", bundle.path, bundle.id, contains=contains)
    assert_nothing_left(rt, bundle)
    return msg


def test_bad_json(logged, bundle):
    bundle.write()
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        f.write('{"ociVersion": "1.3.0",')
    msg = expect_error(logged, "create", "--bundle", bundle.path, bundle.id, contains="config.json")
    assert "invalid JSON" in msg
    assert_nothing_left(logged, bundle)


@pytest.mark.parametrize("path,value,field", [
    (("linux", "namespaces", 0, "type"), "bogus", "linux.namespaces[0].type"),
    (("process", "args"), "not-a-list", "process.args"),
    (("process", "user", "uid"), -1, "process.user.uid"),
    (("mounts", 0, "destination"), 7, "mounts[0].destination"),
])
def test_schema_violation_names_the_field(logged, bundle, path, value, field):
    target = bundle.config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    msg = create_fails(logged, bundle, contains=field)
    assert msg.startswith("config.json: ")


def test_missing_ociversion(logged, bundle):
    del bundle.config["ociVersion"]
    msg = create_fails(logged, bundle, contains="ociVersion")
    assert msg.startswith("config.json")


def test_missing_config(logged, bundle):
    msg = expect_error(logged, "create", "--bundle", bundle.path, bundle.id,
                       contains="config.json")
    assert "not found" in msg
    assert_nothing_left(logged, bundle)


def test_missing_bundle_directory(logged, bundle):
    msg = expect_error(logged, "create", "--bundle", bundle.path + "-nope", bundle.id,
                       contains="config.json")
    assert "not found" in msg or "no such file" in msg
    assert_nothing_left(logged, bundle)


def test_missing_rootfs(logged, bundle):
    bundle.config["root"]["path"] = "no-such-rootfs"
    msg = create_fails(logged, bundle, contains="no-such-rootfs")
    assert "no such file or directory" in msg


def test_executable_not_found(logged, bundle):
    bundle.args("no-such-program", "arg")
    create_fails(logged, bundle, contains='exec: "no-such-program": executable file not found in $PATH')


def test_executable_path_not_found(logged, bundle):
    bundle.args("/bin/no-such-program")
    msg = create_fails(logged, bundle, contains="/bin/no-such-program")
    assert "no such file or directory" in msg


def test_executable_not_executable(logged, bundle):
    with open(os.path.join(bundle.rootfs, "not-exec"), "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(os.path.join(bundle.rootfs, "not-exec"), 0o644)
    bundle.args("/not-exec")
    create_fails(logged, bundle, contains="permission denied")


def test_cwd_is_a_file(logged, bundle):
    bundle.process["cwd"] = "/etc/passwd"
    msg = create_fails(logged, bundle, contains="/etc/passwd")
    assert "not a directory" in msg


def test_bad_namespace_path(logged, bundle):
    bundle.config["linux"]["namespaces"].append({"type": "ipc", "path": "/proc/no/such/ns"})
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n != {"type": "ipc"}]
    msg = create_fails(logged, bundle, contains="/proc/no/such/ns")
    assert "no such file or directory" in msg


def test_duplicate_id(logged, bundle):
    bundle.args("sleep", "30").write()
    logged("create", "--bundle", bundle.path, bundle.id)
    pid = logged.state(bundle.id)["pid"]
    expect_error(logged, "create", "--bundle", bundle.path, bundle.id,
                 contains=f"container with id exists: {bundle.id}")
    # the first container is untouched
    st = logged.state(bundle.id)
    assert st["status"] == "created" and st["pid"] == pid
    logged("delete", "--force", bundle.id)


def test_invalid_container_id(logged, bundle):
    bundle.write()
    for bad in ("../escape", "a/b", ".."):
        res = logged("create", "--bundle", bundle.path, bad, check=False)
        assert res.returncode == 1 and "invalid" in res.stderr.lower(), res
    assert logged.ids() == []
    assert not os.path.exists(logged.root) or os.listdir(logged.root) == []


def test_operations_in_the_wrong_state(logged, bundle):
    bundle.args("sleep", "30").write()
    logged("create", "--bundle", bundle.path, bundle.id)
    logged("start", bundle.id)
    expect_error(logged, "start", bundle.id, contains="cannot start an already running container")
    expect_error(logged, "delete", bundle.id, contains="not stopped")
    assert logged.state(bundle.id)["status"] == "running"
    expect_error(logged, "kill", bundle.id, "NOTASIGNAL", contains="NOTASIGNAL")
    logged("kill", bundle.id, "KILL")
    wait_status(logged, bundle.id, "stopped")
    expect_error(logged, "kill", bundle.id, "TERM", contains="container not running")
    expect_error(logged, "start", bundle.id, contains="stopped")
    logged("delete", bundle.id)
    assert_nothing_left(logged, bundle)


def test_missing_container(logged):
    for args in (("state", "nope"), ("delete", "nope"), ("start", "nope"),
                 ("kill", "nope", "KILL")):
        expect_error(logged, *args, contains="container does not exist")
    res = logged("delete", "--force", "nope", check=False)
    assert res.returncode == 0 and res.stderr == ""


def test_usage_errors(logged):
    res = logged("create", check=False)
    assert res.returncode == 1 and "requires exactly 1 argument" in res.stderr
    res = logged("state", "--no-such-flag", "x", check=False)
    assert res.returncode == 1 and "flag provided but not defined" in res.stderr


@pytest.mark.parametrize("cmd", ["checkpoint", "restore"])
def test_runc_commands_not_implemented_say_so(logged, cmd):
    msg = expect_error(logged, cmd, "x", contains="not supported by this runtime")
    assert msg.startswith(cmd)


def test_unknown_command_is_runc_s_usage_error(logged):
    res = logged("frobnicate", check=False)
    assert res.returncode == 3 and "No help topic for 'frobnicate'" in res.stderr


@pytest.mark.parametrize("path,value,message", [
    (("linux", "memoryPolicy"), {"mode": "MPOL_BIND", "nodes": "0-9876543210"},
     "linux.memoryPolicy.nodes: 9876543210 is out of range (at most 1023)"),
    (("process", "execCPUAffinity"), {"initial": "0", "final": "1,4294967296"},
     "process.execCPUAffinity.final: 4294967296 is out of range (at most 8191)"),
])
def test_sizes_from_the_config_are_bounded_before_use(logged, bundle, path, value, message):
    """A node list up to 9876543210 once made the init build a mask of gigabytes
    (OOM-killed) instead of failing: a config error, nothing started."""
    target = bundle.config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    msg = create_fails(logged, bundle, contains=message)
    assert msg == f"config.json: {message}"


def test_create_into_a_frozen_cgroup_fails(logged, bundle):
    """A cgroup frozen before create (by someone else) would stop the container's
    process for good the moment it joins: fail at once, as runc ("container's cgroup
    unexpectedly frozen"), and leave the cgroup as it was found."""
    freezer = bundle.cgroup_dir("freezer")
    if not os.path.isdir(os.path.dirname(os.path.dirname(freezer))):
        pytest.skip("no cgroup v1 freezer hierarchy (the v2 case runs in the VM lane)")
    os.makedirs(freezer)
    try:
        with open(os.path.join(freezer, "freezer.state"), "w") as f:
            f.write("FROZEN")
        bundle.write()
        expect_error(logged, "create", "--bundle", bundle.path, bundle.id,
                     contains="container's cgroup unexpectedly frozen")
        assert os.path.isdir(freezer)
        with open(os.path.join(freezer, "freezer.state")) as f:
            assert f.read().strip() == "FROZEN"
        with open(os.path.join(freezer, "cgroup.procs")) as f:
            assert f.read() == ""
    finally:
        # a runtime that joined it anyway left its process there, stopped
        with open(os.path.join(freezer, "cgroup.procs")) as f:
            for pid in f.read().split():
                os.kill(int(pid), 9)
        with open(os.path.join(freezer, "freezer.state"), "w") as f:
            f.write("THAWED")
        wait_for(lambda: open(os.path.join(freezer, "cgroup.procs")).read() == "",
                 what="the cgroup to empty")
        os.rmdir(freezer)
    assert_nothing_left(logged, bundle)
