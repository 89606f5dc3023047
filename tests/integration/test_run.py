"""``run`` (foreground, -d, --keep, signals) and ``spec``."""

import json
import os
import signal
import subprocess
import tempfile

import pytest

from support import output, run, wait_for, wait_status

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_code_passthrough(runtime, bundle, code):
    bundle.sh(f"exit {code}")
    assert run(runtime, bundle, check=False).returncode == code
    assert runtime.ids() == []


def test_signal_death_is_128_plus_n(runtime, bundle, tmp_path):
    bundle.args("sleep", "30").write()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(runtime.argv("run", "--bundle", bundle.path, bundle.id),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            wait_for(lambda: bundle.id in runtime.ids() and
                     runtime.state(bundle.id)["status"] == "running", what="running")
            runtime("kill", bundle.id, "KILL")
            assert proc.wait(timeout=10) == 128 + 9
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert runtime.ids() == []


def test_signal_death_without_pid_namespace(runtime, bundle):
    # not pid 1 of a namespace: the shell can kill itself
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] != "pid"]
    bundle.sh("kill -TERM $$")
    assert run(runtime, bundle, check=False).returncode == 128 + 15


def test_stdin_reaches_the_container(runtime, bundle):
    bundle.args("sh", "-c", "read line; echo got:$line")
    assert output(runtime, bundle, input="hello\n") == "got:hello\n"


def test_run_detached(runtime, bundle, tmp_path):
    bundle.args("sleep", "30")
    res = run(runtime, bundle, "-d", "--pid-file", tmp_path / "pid")
    assert res.returncode == 0
    st = runtime.state(bundle.id)
    assert st["status"] == "running"
    assert (tmp_path / "pid").read_text() == str(st["pid"])
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    runtime("kill", bundle.id, "KILL")
    wait_status(runtime, bundle.id, "stopped")
    runtime("delete", bundle.id)


def test_run_keep(runtime, bundle):
    bundle.sh("exit 3")
    assert run(runtime, bundle, "--keep", check=False).returncode == 3
    st = runtime.state(bundle.id)
    assert st["status"] == "stopped"
    assert os.path.isdir(bundle.cgroup_dir("memory"))
    runtime("delete", bundle.id)
    assert runtime.ids() == []
    assert not os.path.exists(bundle.cgroup_dir("memory"))


def test_run_removes_the_container(runtime, bundle):
    bundle.args("true")
    run(runtime, bundle)
    assert runtime.ids() == []
    assert not os.path.exists(bundle.cgroup_dir("memory"))


def catches(pid, signum):
    """The process has a handler for ``signum`` (SigCgt of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def trap_bundle(bundle, ctl):
    ctl.mkdir()
    bundle.config["mounts"].append({"destination": "/ctl", "type": "bind",
                                    "source": str(ctl), "options": ["bind"]})
    bundle.sh("trap 'echo got-term; exit 7' TERM; touch /ctl/ready;"
              " while true; do sleep 0.05; done")


def test_sigterm_to_foreground_run_is_forwarded(runtime, bundle, tmp_path):
    ctl = tmp_path / "ctl"
    trap_bundle(bundle, ctl)
    bundle.write()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(runtime.argv("run", "--bundle", bundle.path, bundle.id),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: (ctl / "ready").exists(), what="container ready")
            wait_for(lambda: catches(proc.pid, signal.SIGTERM), what="run to forward SIGTERM")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 7
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        assert out.read().decode() == "got-term\n"
    assert runtime.ids() == []


def test_sigterm_during_start_is_forwarded(runtime, bundle, tmp_path):
    ctl = tmp_path / "ctl"
    trap_bundle(bundle, ctl)
    # the hook's parent is the `runtime run` process
    bundle.config["hooks"] = {"poststart": [
        {"path": "/bin/sh", "args": ["sh", "-c", "while [ ! -e $0/ready ]; do sleep 0.01; done;"
                                     " kill -TERM $PPID", str(ctl)]}]}
    try:
        res = run(runtime, bundle, check=False, timeout=20)
        assert res.returncode == 7
        assert res.stdout == "got-term\n"
    finally:
        runtime("delete", "--force", bundle.id)


def test_spec_writes_a_runnable_config(runtime, bundle, tmp_path):
    res = runtime("spec", "--bundle", bundle.path)
    assert res.returncode == 0 and res.stdout == ""
    path = os.path.join(bundle.path, "config.json")
    with open(path) as f:
        config = json.load(f)
    assert config["ociVersion"] == "1.3.0"
    assert config["process"]["terminal"] is True
    assert config["root"] == {"path": "rootfs", "readonly": True}
    # refuses to overwrite
    res = runtime("spec", "--bundle", bundle.path, check=False)
    assert res.returncode == 1 and "exists" in res.stderr
    with open(path) as f:
        assert json.load(f) == config
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "hostname; cat /proc/self/status | grep NoNewPrivs"]
    config["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"]
    with open(path, "w") as f:
        json.dump(config, f)
    res = runtime("run", "--bundle", bundle.path, bundle.id)
    assert res.stdout.split() == ["runtime", "NoNewPrivs:", "1"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_during_create_gives_up_the_run(runtime, bundle, tmp_path, sig):
    """A stop signal before start: run does not start the program (as pid 1 without
    its handlers yet, it would not die of the signal), removes the container and
    exits 128+n.  A prestart hook holds create while the signal comes."""
    marker, ran = tmp_path / "in-hook", tmp_path / "ran"
    bundle.config["hooks"] = {"prestart": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}; sleep 0.5"]}]}
    bundle.config["mounts"].append({"destination": "/out", "type": "bind",
                                    "source": str(tmp_path), "options": ["rbind"]})
    bundle.sh("touch /out/ran; sleep 30").write()
    proc = subprocess.Popen(runtime.argv("run", "--bundle", bundle.path, bundle.id),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_for(lambda: marker.exists(), what="the prestart hook")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, err
    assert not ran.exists(), "the program ran"
    assert runtime.ids() == []
    assert not os.path.exists(bundle.cgroup_dir("memory"))
