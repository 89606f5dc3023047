"""The leak checker finds each kind of leak it claims to, and nothing on a clean run."""

import os
import subprocess
import sys

from . import relkit
from .relkit import leakcheck


def _checker(ctx):
    return leakcheck.LeakChecker(roots=[ctx.root], cgroup_prefixes=[relkit.CGROUP_PREFIX],
                                 mount_scope=[ctx.dir])


def test_clean_lifecycle_has_no_leaks(rel):
    checker = _checker(rel)
    before = checker.snapshot()
    rel.run_container("clean")
    during = checker.diff(before)
    assert during.procs and during.cgroups and during.state, \
        f"a running container must show up: {during.counts()}"
    relkit.assert_ok(rel.rt("delete", "--force", "clean"))
    leaks = checker.check(before)
    assert not leaks, str(leaks)
    relkit.FIGURES.add("leakcheck: self-test cases")


def test_finds_an_abandoned_container(rel):
    checker = _checker(rel)
    before = checker.snapshot()
    pid = rel.run_container("abandoned")
    leaks = checker.check(before, timeout=0)
    text = str(leaks)
    assert f"pid {pid} " in text and "in a test cgroup" in text and "tagged" in text, text
    assert any(p.endswith("/abandoned") for p in leaks.cgroups), text
    assert any(p.endswith("/abandoned/state.json") for p in leaks.state), text
    relkit.assert_ok(rel.rt("delete", "--force", "abandoned"))
    assert not checker.check(before)
    relkit.FIGURES.add("leakcheck: self-test cases")


def test_finds_orphans_children_and_zombies(rel):
    checker = _checker(rel)
    before = checker.snapshot()
    # an orphan re-parented to pid 1 (found by the tag it inherited)
    subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 &"], check=True)
    child = subprocess.Popen(["sleep", "30"])
    zombie = subprocess.Popen(["true"])
    relkit.wait_for(lambda: zombie.pid in relkit.zombies_of(os.getpid()), what="zombie")
    leaks = checker.check(before, timeout=0)
    text = str(leaks)
    assert "tagged orphan" in text, text
    assert f"pid {child.pid} " in text and "child of the test" in text, text
    assert f"pid {zombie.pid} " in text and "not reaped" in text, text
    zombie.wait()
    child.kill()
    child.wait()
    checker.cleanup(leaks)  # kills the orphan: it is ours
    assert not checker.check(before), "cleanup must leave nothing"
    relkit.FIGURES.add("leakcheck: self-test cases")


def test_finds_cgroups_mounts_state_and_fds(rel):
    checker = _checker(rel)
    before = checker.snapshot()
    cg = os.path.join("/sys/fs/cgroup/pids", relkit.CGROUP_PREFIX.strip("/") + "-stray")
    os.makedirs(cg)
    mnt = os.path.join(rel.dir, "mnt")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "leakcheck-test", mnt], check=True)
    os.makedirs(os.path.join(rel.root, "stray-container"))
    fd = os.open(rel.dir, os.O_RDONLY)
    try:
        leaks = checker.check(before, timeout=0)
        text = str(leaks)
        assert leaks.counts() == {"mounts": 1, "cgroups": 1, "state": 1, "processes": 0,
                                  "fds": 1}, text
        assert cg in text and mnt in text and "stray-container" in text and f"fd {fd} " in text
    finally:
        os.close(fd)
    checker.cleanup(leaks)
    assert not checker.check(before), "cleanup must leave nothing"
    relkit.FIGURES.add("leakcheck: self-test cases")


def test_process_in_test_cgroup_without_tag(rel):
    """A process the test did not start itself but put in a test cgroup (e.g. by
    another runtime): found by its cgroup alone."""
    checker = leakcheck.LeakChecker(cgroup_prefixes=[relkit.CGROUP_PREFIX], tag="",
                                    fds=False)
    before = checker.snapshot()
    cg = os.path.join("/sys/fs/cgroup/memory", relkit.CGROUP_PREFIX.strip("/") + "-x")
    script = f"mkdir -p {cg} && echo $$ > {cg}/cgroup.procs && exec sleep 30"
    env = {k: v for k, v in os.environ.items() if k != leakcheck.TAG_VAR}
    proc = subprocess.Popen(["setsid", "sh", "-c", script], env=env)
    relkit.wait_for(lambda: "in a test cgroup" in str(checker.diff(before)),
                    what="process in the cgroup")
    leaks = checker.diff(before)
    assert "in a test cgroup" in str(leaks) and cg in str(leaks), str(leaks)
    checker.cleanup(leaks)
    proc.wait()
    assert not checker.check(before)
    relkit.FIGURES.add("leakcheck: self-test cases")


def test_snapshot_is_cheap(rel):
    """A snapshot costs little enough to take one around every runtime command."""
    import time

    checker = _checker(rel)
    t0 = time.perf_counter()
    for _ in range(10):
        checker.diff(checker.snapshot())
    per = (time.perf_counter() - t0) / 20
    relkit.FIGURES.put("leakcheck: snapshot cost (ms)", per * 1000)
    assert per < 0.5, f"a snapshot takes {per * 1000:.0f} ms"


if __name__ == "__main__":
    sys.exit("run with pytest")
