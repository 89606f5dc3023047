"""Fixtures of the reliability lane.

``rel``: a fresh state root, a runner (relkit.Rt), bundles on the shared rootfs and a
leak check around the test: whatever the test leaves (containers are force-deleted
first, and then count as a failure) fails it at teardown.
"""

import json
import os

import pytest

from . import relkit
from .relkit import leakcheck

MOUNT_NOISE = ("/run/netns", "/var/lib/containers", "/run/containers", "/var/lib/containerd",
               "/run/containerd", "/run/user", "/var/run/netns")


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability: leak, fuzz, crash, race, scale and "
                                       "signal tests (tests/reliability)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(relkit.HERE + os.sep):
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter):
    data = relkit.FIGURES.data
    if not data:
        return
    terminalreporter.section("reliability figures")
    for key in sorted(data):
        value = data[key]
        terminalreporter.write_line(f"{key:<48} {value:.4g}" if isinstance(value, float)
                                    else f"{key:<48} {value}")
    out = os.environ.get("RELIABILITY_REPORT")
    if out:
        with open(out, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)


def _counts(mountpoint):
    """Mounts of other people's runs (their /tmp directories) never count; a leak of
    ours is under BASE or anywhere else on the host."""
    return mountpoint.startswith(relkit.BASE + "/") or not mountpoint.startswith("/tmp/")


def new_checker(roots=()):
    return leakcheck.LeakChecker(roots=roots, cgroup_prefixes=[relkit.CGROUP_PREFIX],
                                 mount_ignore=MOUNT_NOISE, owned=[relkit.BASE],
                                 mount_filter=_counts, cgroup_ignore=[relkit.CGROUP_PREFIX])


def reset_prefix():
    """rmdir the run's prefix directories if empty.  The prefix is shared, so the
    leak check ignores it, but one left by a killed create may have an empty
    cpuset (see test_crash), which would fail every later create below it."""
    for path in leakcheck.cgroup_dirs([relkit.CGROUP_PREFIX]):
        if path.rstrip("/").rsplit("/", 1)[-1] == relkit.CGROUP_PREFIX.strip("/"):
            try:
                os.rmdir(path)
            except OSError:
                pass


@pytest.fixture(scope="session")
def rel_session():
    os.makedirs(relkit.BASE, exist_ok=True)
    relkit.shared_rootfs()
    checker = new_checker()
    yield checker
    # the prefix directory is left by the runtime when containers shared it (as
    # runc leaves it); anything below it is a leak
    left = sorted(leakcheck.cgroup_dirs([relkit.CGROUP_PREFIX]), key=len, reverse=True)
    for path in left:
        try:
            os.rmdir(path)
        except OSError:
            pass
    relkit.remove_tree(relkit.BASE)
    below = [p for p in left if p.rstrip("/").rsplit("/", 1)[-1] != relkit.CGROUP_PREFIX[1:]]
    assert not below, f"cgroups left under {relkit.CGROUP_PREFIX}: {below[:10]}"


class Ctx:
    """One test's runtime root and bundles, under the run's base directory."""

    def __init__(self, name, checker_roots=True):
        self.dir = os.path.join(relkit.BASE, name)
        os.makedirs(self.dir, exist_ok=True)
        self.root = os.path.join(self.dir, "state")
        self.rt = relkit.Rt(self.root, os.path.join(self.dir, "runtime.log"))
        self.checker = new_checker([self.root])

    def bundle(self, cid, config=None, **kw):
        return relkit.write_bundle(self.dir, cid, config, **kw)

    def create(self, cid, config=None, check=True, **kw):
        path = self.bundle(cid, config, **kw)
        res = self.rt("create", "--bundle", path, cid)
        if check:
            assert res.rc == 0, res
        return res

    def run_container(self, cid, config=None, **kw):
        """create + start; returns the init pid."""
        self.create(cid, config, **kw)
        relkit.assert_ok(self.rt("start", cid))
        return self.rt.state(cid)["pid"]


@pytest.fixture
def rel(rel_session, request):
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in request.node.name)[:80]
    ctx = Ctx(name)
    before = ctx.checker.snapshot()
    yield ctx
    left = ctx.rt.force_delete_all() if os.path.isdir(ctx.root) else []
    leaks = ctx.checker.check(before)
    if leaks:
        ctx.checker.cleanup(leaks)
    reset_prefix()
    relkit.remove_tree(ctx.dir)
    assert not left, f"test left containers behind: {left}"
    assert not leaks, str(leaks)
