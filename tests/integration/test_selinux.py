"""process.selinuxLabel, linux.mountLabel and exec --process-label where SELinux is
enforcing: the process runs in its domain (attr/current names it) and the policy's
rule bites, the container's filesystems carry the mount label, and a label the
policy does not define is a clear error that leaves nothing behind.

This host has no SELinux.  The VM lane (tests/cgroup2-lane) boots the VM with SELinux
as its LSM, loads the minimal policy of tests/integration/selinux/policy.conf
(container_t may not read secret_t files) in enforcing mode, and runs this file with
RUNTIME_TEST_SELINUX=vm.  Anywhere else, with another policy, it skips.
"""

import os

import pytest

from support import Background, assert_nothing_left, run


def _policy_loaded():
    try:
        with open("/sys/fs/selinux/enforce") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.environ.get("RUNTIME_TEST_SELINUX") != "vm"
                                 or not _policy_loaded(),
                                 reason="needs the VM lane's SELinux policy, enforcing "
                                 "(tests/cgroup2-lane)")]

LABEL = "system_u:system_r:container_t:s0:c1,c2"
MOUNT_LABEL = "system_u:object_r:container_file_t:s0:c1,c2"
SECRET = "system_u:object_r:secret_t:s0"
ATTR = "cat /proc/self/attr/current; echo"


def _secret_mount(bundle):
    """A tmpfs whose files are all secret_t: written from inside, then read back."""
    bundle.config["mounts"].append({"destination": "/secret", "type": "tmpfs",
                                    "source": "tmpfs", "options": [f"context={SECRET}"]})


def test_process_runs_in_its_domain_and_the_policy_bites(runtime, bundle):
    bundle.process["selinuxLabel"] = LABEL
    _secret_mount(bundle)
    bundle.sh(f"{ATTR}; echo written > /secret/f; cat /secret/f || echo denied")
    res = run(runtime, bundle)
    lines = res.stdout.splitlines()
    assert lines[0].rstrip("\0") == LABEL
    assert "written" not in lines and "denied" in lines
    assert "Permission denied" in res.stderr


def test_without_a_label_the_same_read_succeeds(runtime, bundle):
    _secret_mount(bundle)
    bundle.sh(f"{ATTR}; echo written > /secret/f; cat /secret/f")
    lines = run(runtime, bundle).stdout.splitlines()
    assert lines[0].rstrip("\0").split(":")[2] == "kernel_t"
    assert lines[1] == "written"


def test_mount_label_on_the_container_filesystems(runtime, bundle, tmp_path):
    bundle.process["selinuxLabel"] = LABEL
    bundle.config["linux"]["mountLabel"] = MOUNT_LABEL
    bundle.sh("grep -E ' /(dev|dev/shm|dev/pts|proc) ' /proc/self/mountinfo; sleep 60")
    bg = Background(runtime, bundle, tmp_path)
    try:
        pid = runtime.state(bundle.id)["pid"]

        def label(path):
            return os.getxattr(f"/proc/{pid}/root{path}", "security.selinux").rstrip(b"\0")

        for path in ("/dev", "/dev/shm", "/dev/mqueue"):
            assert label(path).decode() == MOUNT_LABEL, path
        # proc takes its label from the policy, as runc leaves it
        assert label("/proc").decode() != MOUNT_LABEL
        runtime("kill", bundle.id, "KILL")
        bg.wait()
        mounts = {line.split()[4]: line for line in bg.output().splitlines()}
        for point in ("/dev", "/dev/shm", "/dev/pts"):
            assert f'context="{MOUNT_LABEL}"' in mounts[point], mounts[point]
        assert "context=" not in mounts["/proc"]
    finally:
        runtime("delete", "--force", bundle.id, check=False)


def test_exec_with_and_without_a_process_label(runtime, bundle, tmp_path):
    bundle.args("sleep", "60")
    Background(runtime, bundle, tmp_path)
    try:
        out = runtime("exec", "--process-label", LABEL, bundle.id, "sh", "-c", ATTR).stdout
        assert out.strip().rstrip("\0") == LABEL
        out = runtime("exec", bundle.id, "sh", "-c", ATTR).stdout
        assert out.strip().rstrip("\0").split(":")[2] == "kernel_t"
    finally:
        runtime("delete", "--force", bundle.id, check=False)


@pytest.mark.parametrize("field", ["process.selinuxLabel", "linux.mountLabel"])
def test_a_label_the_policy_does_not_define_is_a_clear_error(runtime, bundle, field):
    bad = "system_u:system_r:no_such_t:s0"
    if field == "process.selinuxLabel":
        bundle.process["selinuxLabel"] = bad
    else:
        bundle.config["linux"]["mountLabel"] = bad
    bundle.write()
    res = runtime("create", "--bundle", bundle.path, bundle.id, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert field in res.stderr and bad in res.stderr and "policy" in res.stderr
    assert_nothing_left(runtime, bundle)
