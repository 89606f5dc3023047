"""runtime.cgroups on the real host: each test makes its own cgroup under a random
``/runtime-cgtest-*`` prefix with forked helper processes and checks that the limit
bites.  Runs on v1/hybrid hosts and, through tests/cgroup2-lane, on cgroup v2."""

import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cgroup2"))

import cglive  # noqa: E402
from cglive import V2, Counter, busy, cg, fork_until_refused, hog, killed_by, opener, read  # noqa: E402,F401

from runtime import cgroups  # noqa: E402
from runtime.cgroups import CgroupError  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup"),
    reason="needs root and a cgroup filesystem")

v1_only = pytest.mark.skipif(V2, reason="cgroup v1 behaviour")
MiB = 1 << 20


@pytest.fixture(scope="module", autouse=True)
def nothing_left():
    yield from cglive.nothing_left_fixture()


def ctrl_path(m, ctrl):
    return m.paths()[""] if V2 else m.paths()[ctrl]


def sleeper(out):
    time.sleep(120)
    return 0


# -- basic lifecycle ------------------------------------------------------------------

def test_apply_pids_destroy(cg):
    m, c = cg.start(sleeper)
    assert m.pids() == [c.pid]
    own = read(f"/proc/{c.pid}/cgroup")
    assert cg.base + "/ctr" in own
    # a cgroup made inside the container (as with cgroupns) is listed and removed
    sub = ctrl_path(m, "devices") + "/inner"
    os.mkdir(sub)
    c2 = cg.child(sleeper)
    with open(sub + "/cgroup.procs", "w") as f:
        f.write(str(c2.pid))
    assert sorted(m.pids()) == sorted([c.pid, c2.pid])
    c3 = cg.child(sleeper)
    cgroups.load_manager(m.save()).join(c3.pid)  # as `runtime exec` would
    assert sorted(m.pids()) == sorted([c.pid, c2.pid, c3.pid])
    assert cg.base + "/ctr" in read(f"/proc/{c3.pid}/cgroup")
    saved = m.save()
    again = cgroups.load_manager(saved)
    again.signal_all(signal.SIGKILL)
    for child in (c, c2, c3):
        assert killed_by(child.wait(), signal.SIGKILL)
    again.destroy()
    for path in m.paths().values():
        assert not os.path.exists(path)


def test_destroy_never_removes_preexisting_dirs(cg):
    outer = cg.new("pre")
    outer.apply(None)  # the "pre-existing" parent, made by another manager
    m = cg.new("pre/ctr")
    m.apply(None)
    assert all(p.endswith("/pre/ctr") for p in m.created)
    m.destroy()
    for path in outer.paths().values():
        assert os.path.isdir(path)
    for path in m.paths().values():
        assert not os.path.exists(path)


def test_freeze_stops_progress_and_thaw_resumes(cg):
    counter = Counter()
    m, c = cg.start(counter.spin)
    c.go()
    deadline = time.monotonic() + 10
    while counter.get() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    m.freeze()
    assert m.frozen()
    before = counter.get()
    time.sleep(0.3)
    assert counter.get() == before
    m.thaw()
    assert not m.frozen()
    deadline = time.monotonic() + 5
    while counter.get() <= before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counter.get() > before


def test_signal_all_reaches_every_process(cg):
    m, c = cg.start(fork_until_refused, {"pids": {"limit": 4}})
    c.go()
    assert c.read() == b"3"
    pids = m.pids()
    assert len(pids) == 4
    m.signal_all(signal.SIGTERM)
    assert killed_by(c.wait(), signal.SIGTERM)
    deadline = time.monotonic() + 10
    while m.pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert m.pids() == []
    assert not m.frozen()


# -- limits that bite -------------------------------------------------------------------

def test_memory_limit_oom_kills(cg):
    limit = 32 * MiB
    mem = {"limit": limit}
    if V2 or os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        mem["swap"] = limit
    m, c = cg.start(hog(256), {"memory": mem})
    with m.oom_events() as events:
        c.go()
        status = c.wait()
        assert killed_by(status, signal.SIGKILL)
        assert events.wait(timeout=10) >= 1
    assert m.oom_kill_count() >= 1
    st = m.stats()["memory"]
    assert st["usage"]["limit"] == limit
    assert st["usage"]["max"] > limit * 0.9


def test_pids_limit_refuses_fork(cg):
    m, c = cg.start(fork_until_refused, {"pids": {"limit": 5}})
    c.go()
    assert c.read() == b"4"
    assert m.stats()["pids"] == {"current": 5, "limit": 5}


def test_cpu_quota_throttles(cg):
    m, c = cg.start(busy(1.0), {"cpu": {"quota": 20000, "period": 100000}})
    start = time.monotonic()
    c.go()
    assert c.exit_code() == 0
    wall = time.monotonic() - start
    st = m.stats()["cpu"]
    used = st["usage"]["total"] / 1e9
    assert used / wall < 0.35, (used, wall)
    assert st["throttling"]["throttledPeriods"] > 0


def test_cpuset_pins_the_task(cg):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cpus")
    target = max(os.sched_getaffinity(0))

    def affinity(out):
        os.write(out, ",".join(map(str, sorted(os.sched_getaffinity(0)))).encode())
        return 0

    m, c = cg.start(affinity, {"cpu": {"cpus": str(target), "mems": "0"}})
    c.go()
    assert c.read() == str(target).encode()


def test_devices_denied_cannot_be_opened(cg):
    rules = ([{"allow": False, "access": "rwm"}] + cgroups.default_device_rules()
             + [{"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}])
    m, c = cg.start(opener("/dev/null", "/dev/zero", "/dev/full"), {"devices": rules})
    c.go()
    assert c.read() == b"EPERM ok ok"
    # update to a narrower list: zero denied too
    m.update({"devices": rules + [{"allow": False, "type": "c", "major": 1, "minor": 5,
                                    "access": "w"}]})
    c2 = cg.child(opener("/dev/null", "/dev/zero", "/dev/full"))
    with open(ctrl_path(m, "devices") + "/cgroup.procs", "w") as f:
        f.write(str(c2.pid))
    c2.go()
    assert c2.read() == b"EPERM EPERM ok"


@v1_only
def test_ebpf_program_bites_in_the_hybrid_hierarchy(cg):
    """The device program built for v2, attached to our directory in the hybrid
    cgroup2 mount (where the kernel runs it before the v1 check)."""
    from runtime.cgroups import devices, ebpf

    m, c = cg.start(opener("/dev/null", "/dev/zero", "/dev/full"))
    if "" not in m.paths():
        pytest.skip("no hybrid cgroup2 mount")
    rules = ([{"allow": False, "access": "rwm"}] + cgroups.default_device_rules()
             + [{"allow": False, "type": "c", "major": 1, "minor": 7, "access": "r"}])
    state = devices.DeviceState.from_rules(devices.normalize(rules))
    ebpf.install(m.paths()[""], devices.program(state))
    c.go()
    assert c.read() == b"ok ok EPERM"
    # replacing keeps exactly one program attached
    ebpf.install(m.paths()[""], devices.program(state))
    fd = os.open(m.paths()[""], os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(ebpf.query_programs(fd)) == 1
    finally:
        os.close(fd)


@v1_only
def test_blkio_throttle_slows_direct_reads(cg, tmp_path):
    path = tmp_path / "data"
    path.write_bytes(os.urandom(1 * MiB))
    dev = os.stat(path).st_dev
    major, minor = os.major(dev), os.minor(dev)
    if not os.path.exists(f"/sys/dev/block/{major}:{minor}"):
        pytest.skip("temp dir not on a block device")
    if os.path.exists(f"/sys/dev/block/{major}:{minor}/partition"):
        parent = os.path.realpath(f"/sys/dev/block/{major}:{minor}/..")
        major, minor = map(int, read(parent + "/dev").split(":"))

    def reader(out):
        import mmap as _mmap

        buf = _mmap.mmap(-1, 64 * 1024)
        fd = os.open(str(path), os.O_RDONLY | os.O_DIRECT)
        start = time.monotonic()
        while os.readv(fd, [buf]) > 0:
            pass
        os.write(out, f"{time.monotonic() - start:.3f}".encode())
        return 0

    rate = 256 * 1024
    m, c = cg.start(reader, {"blockIO": {"throttleReadBpsDevice": [
        {"major": major, "minor": minor, "rate": rate}]}})
    c.go()
    took = float(c.read())
    assert took > 2.0, took  # 1 MiB at 256 KiB/s, less the first slice's allowance
    assert read(m.paths()["blkio"] + "/blkio.throttle.read_bps_device") == f"{major}:{minor} {rate}"


# -- values readable back -----------------------------------------------------------------

@v1_only
def test_v1_values_read_back(cg):
    has_memsw = os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
    res = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swappiness": 15,
                   "disableOOMKiller": True, "useHierarchy": True, "kernel": 5, "kernelTCP": 5},
        "cpu": {"shares": 512, "quota": 30000, "period": 60000, "burst": 5000, "idle": 0,
                "realtimePeriod": 500000},
        "pids": {"limit": 77},
    }
    # a kernel without BFQ (or CFQ) has no blkio weight file at all
    has_weight = any(os.path.exists(f"/sys/fs/cgroup/blkio/{f}")
                     for f in ("blkio.weight", "blkio.bfq.weight"))
    if has_weight:
        res["blockIO"] = {"weight": 300}
    if has_memsw:
        res["memory"]["swap"] = 96 * MiB
    m, c = cg.start(sleeper, res)
    p = m.paths()
    assert int(read(p["memory"] + "/memory.limit_in_bytes")) == 64 * MiB
    assert int(read(p["memory"] + "/memory.soft_limit_in_bytes")) == 32 * MiB
    if has_memsw:
        assert int(read(p["memory"] + "/memory.memsw.limit_in_bytes")) == 96 * MiB
    assert read(p["memory"] + "/memory.swappiness") == "15"
    assert "oom_kill_disable 1" in read(p["memory"] + "/memory.oom_control")
    assert m.warnings == ["Kernel memory settings are ignored and will be removed"]
    assert read(p["cpu"] + "/cpu.shares") == "512"
    assert read(p["cpu"] + "/cpu.cfs_quota_us") == "30000"
    assert read(p["cpu"] + "/cpu.cfs_period_us") == "60000"
    assert read(p["cpu"] + "/cpu.cfs_burst_us") == "5000"
    assert read(p["cpu"] + "/cpu.rt_period_us") == "500000"
    assert read(p["pids"] + "/pids.max") == "77"
    if has_weight:
        blk = p["blkio"]
        wfile = "blkio.weight" if os.path.exists(blk + "/blkio.weight") else "blkio.bfq.weight"
        assert read(f"{blk}/{wfile}").split()[-1] == "300"
    # update: only what is present changes
    m.update({"pids": {"limit": -1}, "cpu": {"quota": -1}})
    assert read(p["pids"] + "/pids.max") == "max"
    assert read(p["cpu"] + "/cpu.cfs_quota_us") == "-1"
    assert read(p["cpu"] + "/cpu.shares") == "512"
    assert int(read(p["memory"] + "/memory.limit_in_bytes")) == 64 * MiB


@v1_only
def test_v1_memory_limit_below_usage_names_usage(cg):
    m, c = cg.start(hog(24), {"memory": {"limit": 64 * MiB, "disableOOMKiller": True}})
    c.go()
    assert c.exit_code() == 0
    c2 = cg.child(hog(24, hold=60))
    with open(m.paths()["memory"] + "/cgroup.procs", "w") as f:
        f.write(str(c2.pid))
    c2.go()
    assert c2.read() == b"allocated"
    assert int(read(m.paths()["memory"] + "/memory.usage_in_bytes")) > 20 * MiB
    with pytest.raises(CgroupError, match=r"unable to set memory limit to 1048576 \(current usage: \d+, peak usage: \d+\)"):
        m.update({"memory": {"limit": 1 * MiB}})


# -- bad input: clear errors, nothing left behind ------------------------------------------

def test_impossible_cpuset_fails_clearly_and_destroy_cleans(cg):
    m = cg.new()
    c = cg.child(sleeper)
    m.apply(c.pid)
    with pytest.raises(CgroupError, match=r"linux\.resources\.cpu\.cpus.*(invalid argument|"
                                          r"numerical result out of range)"):
        m.set({"cpu": {"cpus": "63"}})
    c.kill()
    m.destroy()
    assert not any(os.path.exists(p) for p in m.paths().values())


@v1_only
def test_unavailable_controllers_fail_clearly(cg):
    m = cg.new()
    m.apply(None)
    host = cgroups.Host()
    if "net_cls" not in host.v1_mounts():
        with pytest.raises(CgroupError, match=r"cannot set linux\.resources\.network\.classID: "
                                              "the net_cls cgroup controller is not mounted"):
            m.set({"network": {"classID": 0x100001}})
    if "rdma" not in host.v1_mounts():
        with pytest.raises(CgroupError, match=r"cannot set linux\.resources\.rdma\.mlx5_1: the "
                                              "rdma cgroup controller is not mounted"):
            m.set({"rdma": {"mlx5_1": {"hcaHandles": 3}}})
    with pytest.raises(CgroupError, match="cannot use unified on cgroup v1"):
        m.set({"unified": {"memory.max": "1"}})
    with pytest.raises(CgroupError, match=r"cannot set linux\.resources\.blockIO\.leafWeight: .*"
                                          "does not exist"):
        m.set({"blockIO": {"leafWeight": 300}})
    m.destroy()
    assert not any(os.path.exists(p) for p in m.paths().values())


def test_relative_and_default_paths_follow_own_cgroup():
    host = cgroups.Host()
    m = cgroups.new_manager("abc", "")
    paths = m.paths()
    own = host.own()
    if V2:
        parent = own[""].rsplit("/", 1)[0]
        assert paths[""] == cgroups._join("/sys/fs/cgroup", parent, "abc")
    else:
        mnt, _ = host.v1_mounts()["memory"]
        assert paths["memory"] == cgroups._join(mnt, own["memory"], "abc")


# -- stats ----------------------------------------------------------------------------------

def test_stats_have_runc_shape(cg):
    m, c = cg.start(busy(0.2), {"pids": {"limit": 10}, "memory": {"limit": 64 * MiB}})
    c.go()
    c.exit_code()
    st = m.stats()
    assert list(st) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                        "network_interfaces"]
    assert st["cpu"]["usage"]["total"] > 0
    assert set(st["cpu"]["usage"]) >= {"kernel", "user"}
    assert st["memory"]["usage"]["limit"] == 64 * MiB
    assert "raw" in st["memory"]
    assert st["pids"]["limit"] == 10
    from runtime import jsonfast

    jsonfast.dumps(st)


def test_timing_apply_set_destroy(cg, capsys):
    res = {"memory": {"limit": 64 * MiB}, "cpu": {"shares": 512, "quota": 50000},
           "pids": {"limit": 100},
           "devices": [{"allow": False, "access": "rwm"}] + cgroups.default_device_rules()}
    times = []
    for i in range(5):
        c = cg.child(sleeper)
        t0 = time.perf_counter()
        m = cgroups.new_manager("t", f"{cg.base}/t{i}")
        m.apply(c.pid)
        m.set(res)
        t1 = time.perf_counter()
        c.kill()
        m.destroy()
        t2 = time.perf_counter()
        times.append((t1 - t0, t2 - t1))
    best = min(times)
    with capsys.disabled():
        print(f"\n[cgroups {'v2' if V2 else 'v1'}] new+apply+set {best[0] * 1e3:.1f} ms, "
              f"destroy {best[1] * 1e3:.1f} ms (best of 5)")


def test_kill_all_on_a_paused_container(cg):
    m, c = cg.start(sleeper)
    c.go()
    m.freeze()
    m.signal_all(signal.SIGTERM)
    assert m.frozen()  # a paused container stays paused; the signal waits
    m.signal_all(signal.SIGKILL)  # thawed so that the kill takes effect (runc)
    assert killed_by(c.wait(), signal.SIGTERM) or killed_by(c.status, signal.SIGKILL)
    assert not m.frozen()
