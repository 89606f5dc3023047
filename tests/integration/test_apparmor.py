"""process.apparmorProfile and exec --apparmor where AppArmor is enabled: the process
runs confined by the profile (its attr/current names it, and the profile's deny rule
bites), exec inherits or overrides it, and a profile that is not loaded is a clear
error that leaves nothing behind.

This host has no AppArmor; the VM lane (tests/cgroup2-lane) boots a Debian kernel
where it is the default LSM and runs this file there.
"""

import os
import shutil
import subprocess
import uuid

import pytest

from support import Background, assert_nothing_left, run


def _apparmor_enabled():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


PARSER = shutil.which("apparmor_parser") or "/usr/sbin/apparmor_parser"

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not _apparmor_enabled(), reason="AppArmor is not enabled here "
                                 "(tests/cgroup2-lane runs this in a VM where it is)"),
              pytest.mark.skipif(not os.access(PARSER, os.X_OK),
                                 reason="apparmor_parser is not installed")]

# Everything allowed but one file: the deny rule is what shows the profile is enforced.
PROFILE = """
profile {name} flags=(attach_disconnected,mediate_deleted) {{
  file,
  capability,
  network,
  mount,
  umount,
  pivot_root,
  signal,
  ptrace,
  unix,
  deny /secret rw,
}}
"""


@pytest.fixture
def profile(tmp_path):
    name = f"runtime-test-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "profile"
    path.write_text(PROFILE.format(name=name))
    subprocess.run([PARSER, "-r", "-W", str(path)], check=True, capture_output=True)
    yield name
    subprocess.run([PARSER, "-R", str(path)], capture_output=True)


ATTR = ("a=/proc/self/attr/apparmor/current; [ -e $a ] || a=/proc/self/attr/current;"
        " cat $a; echo")


def _with_secret(bundle):
    for name in ("secret", "open"):
        with open(os.path.join(bundle.rootfs, name), "w") as f:
            f.write(f"{name} content\n")


def test_process_runs_confined_by_the_profile(runtime, bundle, profile):
    _with_secret(bundle)
    bundle.process["apparmorProfile"] = profile
    bundle.sh(f"{ATTR}; cat /open; cat /secret || echo denied")
    res = run(runtime, bundle)
    lines = res.stdout.splitlines()
    assert lines[0] == f"{profile} (enforce)"
    assert "open content" in lines
    assert "secret content" not in res.stdout and "denied" in lines
    assert "Permission denied" in res.stderr


def test_exec_inherits_or_overrides_the_profile(runtime, bundle, profile, tmp_path):
    _with_secret(bundle)
    bundle.process["apparmorProfile"] = profile
    bundle.args("sleep", "60")
    Background(runtime, bundle, tmp_path)
    try:
        def attr(*flags):
            return runtime("exec", *flags, bundle.id, "sh", "-c", ATTR).stdout.strip()

        assert attr() == f"{profile} (enforce)"
        assert attr("--apparmor", "unconfined") == "unconfined"
        res = runtime("exec", bundle.id, "cat", "/secret", check=False)
        assert res.returncode != 0 and "Permission denied" in res.stderr
        assert runtime("exec", "--apparmor", "unconfined", bundle.id, "cat",
                       "/secret").stdout == "secret content\n"
    finally:
        runtime("delete", "--force", bundle.id, check=False)


def test_exec_into_an_unconfined_container_with_a_profile(runtime, bundle, profile, tmp_path):
    bundle.args("sleep", "60")
    Background(runtime, bundle, tmp_path)
    try:
        out = runtime("exec", "--apparmor", profile, bundle.id, "sh", "-c", ATTR).stdout
        assert out.strip() == f"{profile} (enforce)"
        out = runtime("exec", bundle.id, "sh", "-c", ATTR).stdout
        assert out.strip() == "unconfined"
    finally:
        runtime("delete", "--force", bundle.id, check=False)


def test_a_profile_that_is_not_loaded_is_a_clear_error(runtime, bundle):
    bundle.process["apparmorProfile"] = "runtime-test-not-loaded"
    bundle.write()
    res = runtime("create", "--bundle", bundle.path, bundle.id, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "process.apparmorProfile" in res.stderr
    assert "runtime-test-not-loaded" in res.stderr and "not loaded" in res.stderr
    assert_nothing_left(runtime, bundle)


def test_exec_with_a_profile_that_is_not_loaded_is_a_clear_error(runtime, bundle, tmp_path):
    bundle.args("sleep", "60")
    Background(runtime, bundle, tmp_path)
    try:
        res = runtime("exec", "--apparmor", "runtime-test-not-loaded", bundle.id, "true",
                      check=False)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "runtime-test-not-loaded" in res.stderr and "not loaded" in res.stderr
        assert runtime.state(bundle.id)["status"] == "running"
    finally:
        runtime("delete", "--force", bundle.id, check=False)
