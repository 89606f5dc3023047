"""Whole containers on a pure cgroup v2 host (run in the qemu VM by
tests/cgroup2-lane): the limits of linux.resources bite, and the cgroup commands
(pause, resume, update, kill --all, events) work on cgroup.freeze, cgroup.kill and
the v2 files."""

import json
import os
import time

import pytest

from support import run, wait_status

pytestmark = [pytest.mark.cgroup2, pytest.mark.integration]


def _cgroupns(bundle):
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})


def test_memory_limit_ooms_and_is_visible(runtime, bundle):
    _cgroupns(bundle)
    bundle.config["linux"]["resources"]["memory"] = {"limit": 32 << 20, "swap": 32 << 20}
    # a shell variable of 64 MiB cannot fit in 32 MiB
    bundle.sh("cat /sys/fs/cgroup/memory.max; x=$(head -c 67108864 /dev/zero | tr '\\0' a);"
              " echo survived")
    res = run(runtime, bundle, check=False, timeout=180)
    assert res.stdout.splitlines()[0] == str(32 << 20)
    assert "survived" not in res.stdout
    assert res.returncode == 137, res.stderr


def test_pids_limit_stops_forks(runtime, bundle):
    _cgroupns(bundle)
    bundle.config["linux"]["resources"]["pids"] = {"limit": 8}
    # the shell dies when a fork fails (ash makes that fatal): 12 sleeps cannot start
    bundle.sh("cat /sys/fs/cgroup/pids.max; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do "
              "sleep 30 & done; echo all-started")
    res = run(runtime, bundle, check=False, timeout=180)
    assert res.stdout.split()[0] == "8"
    assert "all-started" not in res.stdout
    assert "fork" in res.stderr and "Resource temporarily unavailable" in res.stderr


def test_cpu_quota_throttles(runtime, bundle):
    _cgroupns(bundle)
    bundle.config["linux"]["resources"]["cpu"] = {"quota": 20000, "period": 100000}
    bundle.sh("cat /sys/fs/cgroup/cpu.max; end=$(($(date +%s)+3));"
              " while [ $(date +%s) -lt $end ]; do :; done; cat /sys/fs/cgroup/cpu.stat")
    out = run(runtime, bundle, timeout=180).stdout.splitlines()
    assert out[0] == "20000 100000"
    stat = dict(line.split() for line in out[1:] if len(line.split()) == 2)
    assert int(stat["nr_throttled"]) > 0
    # 3 s of wall time at a 20% quota: well under 3 s of cpu (emulation adds slack)
    assert int(stat["usage_usec"]) < 1_500_000


def test_pause_resume_update_events_kill_all(runtime, bundle, tmp_path):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 64 << 20}
    bundle.sh("sleep 300 & sleep 300 & wait")
    bundle.write()
    cid = bundle.id
    runtime("run", "-d", "--bundle", bundle.path, cid, timeout=180)
    cg = f"/sys/fs/cgroup/{bundle.config['linux']['cgroupsPath'].strip('/')}"
    runtime("pause", cid, timeout=120)
    assert runtime.state(cid)["status"] == "paused"
    with open(f"{cg}/cgroup.freeze") as f:
        assert f.read().strip() == "1"
    runtime("resume", cid, timeout=120)
    assert runtime.state(cid)["status"] == "running"
    runtime("update", "--memory", "96m", "--pids-limit", "50", cid, timeout=120)
    with open(f"{cg}/memory.max") as f:
        assert int(f.read()) == 96 << 20
    with open(f"{cg}/pids.max") as f:
        assert f.read().strip() == "50"
    stats = json.loads(runtime("events", "--stats", cid, timeout=120).stdout)
    assert stats["type"] == "stats" and stats["data"]["pids"]["current"] >= 3
    assert json.loads(runtime("ps", "-f", "json", cid, timeout=120).stdout)
    runtime("kill", "--all", cid, "KILL", timeout=120)
    wait_status(runtime, cid, "stopped", timeout=60)
    runtime("delete", cid, timeout=120)
    assert not os.path.exists(cg)


def test_device_rules_by_ebpf(runtime, bundle):
    # a node made in the rootfs beforehand, outside the allowed devices
    os.mknod(os.path.join(bundle.rootfs, "mem-node"), 0o600 | 0o20000, os.makedev(1, 1))
    bundle.sh("head -c1 /mem-node >/dev/null 2>&1 && echo opened || echo denied;"
              " echo x > /dev/null && echo null-ok")
    out = run(runtime, bundle, timeout=180).stdout.split()
    assert out == ["denied", "null-ok"]


def test_cgroup_namespace_root(runtime, bundle):
    _cgroupns(bundle)
    bundle.sh("cat /proc/self/cgroup; ls /sys/fs/cgroup/cgroup.controllers")
    out = run(runtime, bundle, timeout=180).stdout.splitlines()
    assert out[0] == "0::/"
    assert out[1] == "/sys/fs/cgroup/cgroup.controllers"


def test_no_cgroup_left_after_failed_create(runtime, bundle):
    bundle.config["linux"]["resources"]["cpu"] = {"cpus": "63"}  # no such cpu here
    start = time.monotonic()
    res = run(runtime, bundle, check=False, timeout=180)
    assert res.returncode == 1 and "cpu" in res.stderr.lower(), res.stderr
    assert not os.path.exists(f"/sys/fs/cgroup/{bundle.config['linux']['cgroupsPath'].strip('/')}")
    assert runtime.ids() == []
    assert time.monotonic() - start < 170
