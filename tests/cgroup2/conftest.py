"""The cgroup v2 lane: tests marked ``cgroup2`` need a pure cgroup v2 host (run
them through tests/cgroup2-lane, which boots the qemu VM); elsewhere they skip."""

import os

import pytest

V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a pure cgroup v2 host: run tests/cgroup2-lane")
    for item in items:
        if "cgroup2" in item.keywords and not V2:
            item.add_marker(skip)
