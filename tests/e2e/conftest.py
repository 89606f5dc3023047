"""Fixtures for the end-to-end tests (see e2elib.py and docs/clients.md).

The runtime under test: ``--runtime-binary PATH`` (declared in tests/support.py), else
``$E2E_RUNTIME``, else this project's runtime.  CI runs them again with
``--runtime-binary /usr/sbin/runc``: a test that fails only for us is ours to explain.
"""

import os
import shutil
import time

import pytest

from e2elib import Ctr, E2EEnv, Podman
from support import RUNTIME

CLIENTS = ("podman", "conmon", "containerd", "ctr", "containerd-shim-runc-v2")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "e2e: end-to-end tests through podman/conmon and containerd/ctr")


def _runtime_binary(config):
    try:
        opt = config.getoption("--runtime-binary")
    except ValueError:
        opt = None
    path = opt or os.environ.get("E2E_RUNTIME") or RUNTIME
    found = shutil.which(path)
    return os.path.abspath(found) if found else path


@pytest.fixture(scope="session")
def e2e(request):
    if os.geteuid() != 0:
        pytest.skip("e2e tests need root")
    missing = [c for c in CLIENTS if shutil.which(c) is None]
    if missing:
        pytest.skip("clients not installed: " + ", ".join(missing))
    binary = _runtime_binary(request.config)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.fail(f"runtime under test not found or not executable: {binary}")
    env = E2EEnv(binary)
    started = time.monotonic()
    try:
        env.setup_wrappers()
        env.setup_rootfs_tar()
        env.setup_podman()
        env.import_images()
        env.setup_containerd()
    except BaseException:
        problems = env.teardown()
        if problems:
            print("e2e cleanup after failed setup:\n  " + "\n  ".join(problems))
        raise
    env.setup_seconds = time.monotonic() - started
    yield env
    problems = env.teardown()
    if problems:
        raise AssertionError("e2e session left things behind (now removed where "
                             "possible):\n  " + "\n  ".join(problems))


@pytest.fixture
def pm(e2e):
    helper = Podman(e2e)
    yield helper
    helper.cleanup()


@pytest.fixture
def ct(e2e):
    helper = Ctr(e2e)
    yield helper
    helper.cleanup()
