"""Paused containers and frozen cgroups: exec --ignore-paused, resume, pause states."""

import os
import subprocess
import time

import pytest

from support import Background, wait_for

pytestmark = pytest.mark.integration


def test_exec_ignore_paused_waits_for_resume(runtime, bundle, tmp_path):
    """The exec'd process waits in the frozen cgroup; `resume` (which takes the
    container's lock) must not wait for the exec, and the exec then runs (runc)."""
    bundle.args("sleep", "60")
    bg = Background(runtime, bundle, tmp_path)
    out, err = tmp_path / "exec.out", tmp_path / "exec.err"
    try:
        runtime("pause", bundle.id)
        with open(out, "wb") as o, open(err, "wb") as e:
            exec_ = subprocess.Popen(runtime.argv("exec", "--ignore-paused", bundle.id,
                                                  "sh", "-c", "echo ran; exit 3"),
                                     stdin=subprocess.DEVNULL, stdout=o, stderr=e)
        try:
            # the exec's process sits frozen (it never ran)
            time.sleep(0.5)
            assert exec_.poll() is None and out.read_text() == ""
            assert runtime.state(bundle.id)["status"] == "paused"
            runtime("resume", bundle.id, timeout=10)
            assert exec_.wait(timeout=10) == 3, err.read_text()
            assert out.read_text() == "ran\n"
        finally:
            if exec_.poll() is None:
                exec_.kill()
                exec_.wait()
        assert runtime.state(bundle.id)["status"] == "running"
    finally:
        bg.delete()


def test_exec_into_a_paused_container_needs_ignore_paused(runtime, bundle, tmp_path):
    bundle.args("sleep", "60")
    bg = Background(runtime, bundle, tmp_path)
    try:
        runtime("pause", bundle.id)
        res = runtime("exec", bundle.id, "true", check=False, timeout=10)
        assert res.returncode == 1
        assert "cannot exec in a paused container (use --ignore-paused to override)" in res.stderr
        runtime("resume", bundle.id, timeout=10)
        wait_for(lambda: runtime.state(bundle.id)["status"] == "running", what="running")
        assert os.path.exists(f"/proc/{bg.pid}")
    finally:
        bg.delete()
