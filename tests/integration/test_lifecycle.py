"""The OCI lifecycle through the CLI: create, start, state, kill, delete, run."""

import json
import os
import time

import pytest

from support import run

pytestmark = pytest.mark.integration


def test_run_prints_and_exits_with_code(runtime, bundle):
    bundle.sh("echo hello; exit 3")
    res = run(runtime, bundle, check=False)
    assert res.returncode == 3
    assert res.stdout == "hello\n"
    assert runtime.ids() == []


def test_create_start_state_delete(runtime, bundle, tmp_path):
    bundle.args("sleep", "30").write()
    pidfile = tmp_path / "pid"
    runtime("create", "--bundle", bundle.path, "--pid-file", pidfile, bundle.id)
    st = runtime.state(bundle.id)
    assert st["status"] == "created"
    assert st["ociVersion"] == "1.3.0"
    assert st["bundle"] == bundle.path
    assert pidfile.read_text() == str(st["pid"])
    # the user's program has not run: the init is still the helper waiting for start
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"runtime-init"
    runtime("start", bundle.id)
    st = runtime.state(bundle.id)
    assert st["status"] == "running"
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    runtime("kill", bundle.id, "KILL")
    for _ in range(200):
        if runtime.state(bundle.id)["status"] == "stopped":
            break
        time.sleep(0.01)
    st = runtime.state(bundle.id)
    assert st["status"] == "stopped" and st["pid"] == 0
    runtime("delete", bundle.id)
    assert runtime("state", bundle.id, check=False).returncode == 1
    assert not os.path.exists(bundle.cgroup_dir("memory"))


def test_start_twice_fails(runtime, bundle):
    bundle.args("sleep", "30").write()
    runtime("create", "--bundle", bundle.path, bundle.id)
    runtime("start", bundle.id)
    res = runtime("start", bundle.id, check=False)
    assert res.returncode == 1
    assert "cannot start an already running container" in res.stderr
    res = runtime("delete", bundle.id, check=False)
    assert res.returncode == 1 and "not stopped: running" in res.stderr
    runtime("delete", "--force", bundle.id)
    assert runtime.ids() == []


def test_list_formats(runtime, bundle):
    bundle.args("sleep", "30").write()
    assert runtime("list", "-f", "json").stdout.strip() == "null"
    runtime("create", "--bundle", bundle.path, bundle.id)
    listed = json.loads(runtime("list", "--format", "json").stdout)
    assert [c["id"] for c in listed] == [bundle.id]
    assert listed[0]["status"] == "created"
    table = runtime("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[0] == bundle.id
    runtime("delete", "--force", bundle.id)


def test_delete_kills_what_is_left_in_the_containers_own_cgroup(runtime, bundle, tmp_path):
    """A process left in the cgroup the container made (an init whose create was
    killed before its pid was recorded is one) is killed by delete, which used to
    fail with EBUSY on the cgroup and leave it."""
    import subprocess

    from support import Background, cgroup_controllers, wait_status

    bundle.args("sleep", "60")
    bg = Background(runtime, bundle, tmp_path)
    straggler = subprocess.Popen(["sleep", "60"])
    try:
        for ctrl in cgroup_controllers():
            procs = os.path.join(bundle.cgroup_dir(ctrl), "cgroup.procs")
            if os.path.exists(procs):
                with open(procs, "w") as f:
                    f.write(str(straggler.pid))
        runtime("kill", bundle.id, "KILL")
        wait_status(runtime, bundle.id, "stopped")
        runtime("delete", bundle.id)
        assert straggler.wait(timeout=10) == -9
        for ctrl in cgroup_controllers():
            assert not os.path.exists(bundle.cgroup_dir(ctrl))
    finally:
        if straggler.poll() is None:
            straggler.kill()
            straggler.wait()
        if bundle.id in runtime.ids():
            bg.delete()
