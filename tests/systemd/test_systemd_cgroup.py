"""``--systemd-cgroup``: the container's cgroup is a transient systemd scope, made,
updated and stopped over D-Bus, with the limits in both the unit's properties and
the cgroup files, and checked from inside the container and with systemctl.

This host runs no systemd.  The VM lane (tests/cgroup2-lane) starts one in pid,
mount and cgroup namespaces of the VM (tests/systemd/run-in-systemd) and runs this
file beside it with RUNTIME_TEST_SYSTEMD=ns; anywhere else it skips.
"""

import os
import subprocess

import pytest

from support import assert_nothing_left, wait_status

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.environ.get("RUNTIME_TEST_SYSTEMD") != "ns"
                                 or not os.path.exists("/run/systemd/private"),
                                 reason="needs the VM lane's systemd (tests/cgroup2-lane)")]

SLICE = "system.slice"
PREFIX = "runtime-test"


def unit_of(bundle):
    return f"{PREFIX}-{bundle.id}.scope"


def cgroup_of(bundle):
    return f"/sys/fs/cgroup/{SLICE}/{unit_of(bundle)}"


@pytest.fixture
def sd_bundle(bundle):
    bundle.config["linux"]["cgroupsPath"] = f"{SLICE}:{PREFIX}:{bundle.id}"
    return bundle


def systemctl_show(unit, *props):
    out = subprocess.run(["systemctl", "show", unit, *(f"-p{p}" for p in props)],
                         check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def sd(runtime, *args, **kw):
    return runtime("--systemd-cgroup", *args, **kw)


def test_container_runs_in_its_scope_with_the_limits(runtime, sd_bundle):
    b = sd_bundle
    b.config["linux"]["namespaces"].append({"type": "cgroup"})
    b.config["linux"]["resources"].update({
        "memory": {"limit": 64 << 20}, "pids": {"limit": 32}, "cpu": {"shares": 512}})
    # with its own cgroup namespace, the container's /sys/fs/cgroup is the scope
    b.sh("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.weight")
    b.write()
    res = sd(runtime, "run", "--bundle", b.path, b.id, timeout=120)
    assert res.stdout.split() == [str(64 << 20), "32", "20"]


def test_the_unit_carries_the_limits_and_survives_a_reload(runtime, sd_bundle, tmp_path):
    b = sd_bundle
    b.config["linux"]["resources"].update({
        "memory": {"limit": 64 << 20}, "pids": {"limit": 32},
        "cpu": {"quota": 50000, "period": 100000}})
    b.args("sleep", "300")
    b.write()
    sd(runtime, "run", "-d", "--bundle", b.path, b.id, timeout=120)
    try:
        props = systemctl_show(unit_of(b), "ActiveState", "Slice", "Delegate", "MemoryMax",
                               "TasksMax", "CPUQuotaPerSecUSec", "Description")
        assert props["ActiveState"] == "active"
        assert props["Slice"] == SLICE and props["Delegate"] == "yes"
        assert props["MemoryMax"] == str(64 << 20) and props["TasksMax"] == "32"
        assert props["CPUQuotaPerSecUSec"] == "500ms"
        assert props["Description"] == f"libcontainer container {unit_of(b)}"
        pid = runtime.state(b.id)["pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            assert f.read().strip() == f"0::/{SLICE}/{unit_of(b)}"
        # systemd writes its units' cgroup files again on reload: the limits stay
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        with open(f"{cgroup_of(b)}/memory.max") as f:
            assert f.read().strip() == str(64 << 20)
        with open(f"{cgroup_of(b)}/cpu.max") as f:
            assert f.read().strip() == "50000 100000"
    finally:
        sd(runtime, "delete", "--force", b.id, check=False)


def test_update_sets_the_unit_and_the_files(runtime, sd_bundle):
    b = sd_bundle
    b.config["linux"]["resources"]["memory"] = {"limit": 64 << 20}
    b.args("sleep", "300")
    b.write()
    sd(runtime, "run", "-d", "--bundle", b.path, b.id, timeout=120)
    try:
        sd(runtime, "update", "--memory", "96m", "--pids-limit", "50", "--cpuset-cpus", "0",
           b.id)
        props = systemctl_show(unit_of(b), "MemoryMax", "TasksMax", "AllowedCPUs")
        assert props["MemoryMax"] == str(96 << 20) and props["TasksMax"] == "50"
        assert props["AllowedCPUs"] == "0"
        for name, want in (("memory.max", str(96 << 20)), ("pids.max", "50"),
                           ("cpuset.cpus", "0")):
            with open(f"{cgroup_of(b)}/{name}") as f:
                assert f.read().strip() == want, name
    finally:
        sd(runtime, "delete", "--force", b.id, check=False)


def test_pids_limit_bites(runtime, sd_bundle):
    b = sd_bundle
    b.config["linux"]["resources"]["pids"] = {"limit": 8}
    b.sh("for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done; echo all-started")
    b.write()
    res = sd(runtime, "run", "--bundle", b.path, b.id, check=False, timeout=120)
    assert "all-started" not in res.stdout
    assert "fork" in res.stderr and "Resource temporarily unavailable" in res.stderr


def test_exec_pause_resume_ps_and_events(runtime, sd_bundle):
    b = sd_bundle
    b.args("sleep", "300")
    b.write()
    sd(runtime, "run", "-d", "--bundle", b.path, b.id, timeout=120)
    try:
        out = sd(runtime, "exec", b.id, "cat", "/proc/self/cgroup").stdout.strip()
        assert out == f"0::/{SLICE}/{unit_of(b)}"
        sd(runtime, "pause", b.id)
        assert runtime.state(b.id)["status"] == "paused"
        with open(f"{cgroup_of(b)}/cgroup.freeze") as f:
            assert f.read().strip() == "1"
        sd(runtime, "resume", b.id)
        assert runtime.state(b.id)["status"] == "running"
        assert str(runtime.state(b.id)["pid"]) in sd(runtime, "ps", b.id).stdout
        assert '"pids"' in sd(runtime, "events", "--stats", b.id).stdout
    finally:
        sd(runtime, "delete", "--force", b.id, check=False)


def test_delete_stops_the_unit(runtime, sd_bundle):
    b = sd_bundle
    b.args("sleep", "300")
    b.write()
    sd(runtime, "create", "--bundle", b.path, b.id, timeout=120)
    assert systemctl_show(unit_of(b), "ActiveState")["ActiveState"] == "active"
    sd(runtime, "delete", "--force", b.id)
    assert systemctl_show(unit_of(b), "LoadState")["LoadState"] == "not-found"
    assert not os.path.exists(cgroup_of(b))


def test_a_stopped_container_deletes_cleanly(runtime, sd_bundle):
    # when its last process exits, systemd drops the scope by itself: delete then
    # finds no unit to stop, and that is not an error
    b = sd_bundle
    b.args("true")
    b.write()
    sd(runtime, "create", "--bundle", b.path, b.id, timeout=120)
    sd(runtime, "start", b.id)
    wait_status(runtime, b.id, "stopped", timeout=30)
    sd(runtime, "delete", b.id)
    assert systemctl_show(unit_of(b), "LoadState")["LoadState"] == "not-found"
    assert not os.path.exists(cgroup_of(b))
    assert b.id not in runtime.ids()


def test_a_unit_in_use_is_a_clear_error(runtime, sd_bundle, make_bundle):
    first = sd_bundle
    first.args("sleep", "300")
    first.write()
    sd(runtime, "create", "--bundle", first.path, first.id, timeout=120)
    try:
        second = make_bundle()
        second.config["linux"]["cgroupsPath"] = first.config["linux"]["cgroupsPath"]
        second.write()
        res = sd(runtime, "create", "--bundle", second.path, second.id, check=False,
                 timeout=120)
        assert res.returncode == 1, res.stderr
        assert unit_of(first) in res.stderr and "already exists" in res.stderr
        assert second.id not in runtime.ids()
        assert runtime.state(first.id)["status"] == "created"
    finally:
        sd(runtime, "delete", "--force", first.id, check=False)


@pytest.mark.parametrize("path, words", [
    ("/not/a/systemd/path", ["slice:prefix:name", "/not/a/systemd/path"]),
    ("bad--name.slice:p:n", ["invalid slice name", "bad--name.slice"]),
    ("nota-slice:p:n", ["invalid slice name", "nota-slice"]),
])
def test_a_bad_cgroups_path_is_a_clear_error(runtime, sd_bundle, path, words):
    b = sd_bundle
    b.config["linux"]["cgroupsPath"] = path
    b.write()
    res = sd(runtime, "create", "--bundle", b.path, b.id, check=False)
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr
    assert_nothing_left(runtime, b)


def test_a_failed_create_stops_the_unit(runtime, sd_bundle):
    b = sd_bundle
    b.args("/no/such/program")
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    b.write()
    res = sd(runtime, "create", "--bundle", b.path, b.id, check=False, timeout=120)
    assert res.returncode == 1
    assert systemctl_show(unit_of(b), "LoadState")["LoadState"] == "not-found"
    assert not os.path.exists(cgroup_of(b))
    assert_nothing_left(runtime, b)
