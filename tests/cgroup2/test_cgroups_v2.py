"""cgroup v2 behaviour of runtime.cgroups (run by tests/cgroup2-lane in the qemu VM;
the portable "limit bites" tests in tests/unit/test_cgroups_live.py run there too)."""

import errno
import mmap
import os
import signal
import time

import pytest

import cglive
from cglive import PREFIX, V2, busy, cg, fork_until_refused, killed_by, read  # noqa: F401

from runtime import cgroups
from runtime.cgroups import CgroupError

pytestmark = [pytest.mark.cgroup2,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

MiB = 1 << 20
ROOT = "/sys/fs/cgroup"
IN_VM = "cgroup_no_v1=all" in open("/proc/cmdline").read()


@pytest.fixture(scope="module", autouse=True)
def nothing_left():
    if not V2:
        yield
        return
    yield from cglive.nothing_left_fixture()


def sleeper(out):
    time.sleep(120)
    return 0


def test_ancestors_get_controllers_enabled(cg):
    m, c = cg.start(sleeper, sub="a/b/ctr")
    offered = set(read(ROOT + "/cgroup.controllers").split())
    for d in (ROOT + PREFIX, ROOT + cg.base, ROOT + cg.base + "/a", ROOT + cg.base + "/a/b"):
        assert set(read(d + "/cgroup.subtree_control").split()) == offered, d
    leaf = m.paths()[""]
    assert set(read(leaf + "/cgroup.controllers").split()) == offered
    assert read(leaf + "/cgroup.subtree_control") == ""
    assert read(leaf + "/cgroup.procs") == str(c.pid)


def test_values_read_back_with_conversions(cg):
    res = {"memory": {"limit": 64 * MiB, "swap": 96 * MiB, "reservation": 16 * MiB,
                      "swappiness": 30},
           "cpu": {"shares": 1024, "quota": 30000, "period": 60000, "burst": 1000, "idle": 0,
                   "cpus": "0", "mems": "0"},
           "pids": {"limit": 33},
           "blockIO": {"weight": 500},
           "unified": {"memory.high": str(48 * MiB), "pids.max": "34"}}
    m, c = cg.start(sleeper, res)
    d = m.paths()[""]
    assert read(d + "/memory.max") == str(64 * MiB)
    if os.path.exists(d + "/memory.swap.max"):
        assert read(d + "/memory.swap.max") == str(32 * MiB)
    assert read(d + "/memory.low") == str(16 * MiB)
    assert read(d + "/memory.high") == str(48 * MiB)
    assert m.warnings == ["linux.resources.memory.swappiness is not supported on cgroup v2 "
                          "and was ignored"]
    assert read(d + "/cpu.weight") == "39"
    assert read(d + "/cpu.max") == "30000 60000"
    assert read(d + "/cpu.max.burst") == "1000"
    assert read(d + "/cpuset.cpus") == "0"
    assert read(d + "/pids.max") == "34"  # unified is written last
    if os.path.exists(d + "/io.bfq.weight"):
        assert read(d + "/io.bfq.weight").split()[-1] == "500"
    else:
        assert read(d + "/io.weight") == "default 4950"
    m.update({"cpu": {"period": 100000}, "memory": {"limit": 80 * MiB}})
    assert read(d + "/cpu.max") == "30000 100000"
    assert read(d + "/memory.max") == str(80 * MiB)
    assert read(d + "/pids.max") == "34"


def test_cgroup_kill_takes_every_process(cg):
    m, c = cg.start(fork_until_refused, {"pids": {"limit": 6}})
    c.go()
    assert c.read() == b"5"
    assert len(m.pids()) == 6
    assert os.path.exists(m.paths()[""] + "/cgroup.kill")
    m.signal_all(signal.SIGKILL)
    assert killed_by(c.wait(), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while m.pids() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert m.pids() == []


def test_device_program_is_replaced_on_update(cg):
    from runtime.cgroups import ebpf

    rules = [{"allow": False, "access": "rwm"}] + cgroups.default_device_rules()
    m, c = cg.start(sleeper, {"devices": rules})
    fd = os.open(m.paths()[""], os.O_RDONLY | os.O_DIRECTORY)
    try:
        first = ebpf.query_programs(fd)
        assert len(first) == 1
        m.update({"devices": rules[:3]})
        second = ebpf.query_programs(fd)
        assert len(second) == 1 and second != first
    finally:
        os.close(fd)


def test_checkbeforeupdate_rejects_limit_below_usage(cg):
    m, c = cg.start(cglive.hog(24, hold=60), {"memory": {"limit": 256 * MiB}})
    c.go()
    assert c.read() == b"allocated"
    with pytest.raises(CgroupError, match=r"rejecting memory limit 4194304 below current usage"):
        m.update({"memory": {"limit": 4 * MiB, "checkBeforeUpdate": True}})
    assert read(m.paths()[""] + "/memory.max") == str(256 * MiB)


@pytest.mark.skipif(not IN_VM, reason="changes vm.nr_hugepages: only in the throw-away VM")
def test_hugetlb_limit_bites(cg):
    with open("/proc/sys/vm/nr_hugepages", "w") as f:
        f.write("8")
    try:
        if int(read("/proc/sys/vm/nr_hugepages")) < 4:
            pytest.skip("no 2MB hugepages could be reserved")

        def mapper(out):
            res = []
            for pages in (2, 3):
                try:
                    mm = mmap.mmap(-1, pages * 2 * MiB,
                                   flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40000)
                    for i in range(pages):
                        mm[i * 2 * MiB] = 1
                    mm.close()
                    res.append("ok")
                except OSError as e:
                    res.append(errno.errorcode[e.errno])
            os.write(out, " ".join(res).encode())
            return 0

        m, c = cg.start(mapper, {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
        d = m.paths()[""]
        assert read(d + "/hugetlb.2MB.max") == str(4 * MiB)
        c.go()
        status = c.wait()
        if os.path.exists(d + "/hugetlb.2MB.rsvd.max"):
            # reservation accounting: the mmap itself is refused
            assert read(d + "/hugetlb.2MB.rsvd.max") == str(4 * MiB)
            assert c.read() == b"ok ENOMEM"
        else:
            assert killed_by(status, signal.SIGBUS)
        assert m.stats()["hugetlb"]["2MB"]["failcnt"] >= 1
    finally:
        with open("/proc/sys/vm/nr_hugepages", "w") as f:
            f.write("0")


@pytest.mark.skipif(not os.environ.get("V2VM_SCRATCH"), reason="needs VM_SCRATCH_MB disk")
def test_io_max_slows_direct_reads(cg):
    dev = os.environ["V2VM_SCRATCH"]
    st = os.stat(dev)
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)

    def reader(out):
        buf = mmap.mmap(-1, 64 * 1024)
        fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
        start = time.monotonic()
        total = 0
        while total < 1 * MiB:
            total += os.readv(fd, [buf])
        os.write(out, f"{time.monotonic() - start:.3f}".encode())
        return 0

    rate = 256 * 1024
    m, c = cg.start(reader, {"blockIO": {"throttleReadBpsDevice": [
        {"major": major, "minor": minor, "rate": rate}]}})
    assert f"{major}:{minor} rbps={rate}" in read(m.paths()[""] + "/io.max")
    c.go()
    took = float(c.read())
    assert took > 2.0, took


def test_rdma_error_names_the_device(cg):
    m, c = cg.start(sleeper)
    if "rdma" not in read(m.paths()[""] + "/cgroup.controllers").split():
        pytest.skip("no rdma controller")
    with pytest.raises(CgroupError, match=r"cannot set linux\.resources\.rdma\.mlx5_9: write"):
        m.set({"rdma": {"mlx5_9": {"hcaHandles": 3}}})


def test_stats_v2(cg):
    m, c = cg.start(busy(0.3), {"memory": {"limit": 64 * MiB}, "pids": {"limit": 9}})
    c.go()
    c.exit_code()
    st = m.stats()
    assert st["cpu"]["usage"]["total"] > 0
    assert st["memory"]["usage"]["limit"] == 64 * MiB
    assert st["pids"] == {"limit": 9} or st["pids"]["limit"] == 9
    assert "raw" in st["memory"] and "anon" in st["memory"]["raw"]
