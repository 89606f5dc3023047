"""Lifecycle hooks: order, namespaces, state on stdin, argv, env, timeout, failures."""

import json
import os
import time

import pytest

from support import assert_nothing_left, host_ns, sections, wait_status

pytestmark = pytest.mark.integration

# Records one section per call: argv, environment, namespaces and the state on stdin.
RECORDER = """#!/bin/sh
log=$1
shift
{
  echo "=== $1"
  echo "args $*"
  echo "mnt $(readlink /proc/self/ns/mnt)"
  echo "pidns $(readlink /proc/self/ns/pid)"
  echo "env $(env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' | sort | tr '\\n' ' ')"
  echo "state $(cat)"
} >> "$log"
"""


def hook(script, log, name, *extra, **fields):
    entry = {"path": script, "args": ["recorder", log, name, *extra],
             "env": ["PATH=/usr/bin:/bin", "HOOK_VAR=a b"]}
    entry.update(fields)
    return entry


def records(path):
    out = []
    for name, body in sections(open(path).read()).items():
        rec = {"name": name}
        for line in body.splitlines():
            key, _, value = line.partition(" ")
            rec[key] = value
        rec["state"] = json.loads(rec["state"])
        rec["mnt"] = int(rec["mnt"].split("[")[1].rstrip("]"))
        rec["pidns"] = int(rec["pidns"].split("[")[1].rstrip("]"))
        out.append(rec)
    return out


@pytest.fixture
def recorder(tmp_path):
    path = tmp_path / "recorder.sh"
    path.write_text(RECORDER)
    path.chmod(0o755)
    return str(path)


def test_hooks_order_namespaces_and_state(runtime, bundle, tmp_path, recorder):
    log = str(tmp_path / "hooks.log")
    bundle.config["annotations"] = {"org.test": "yes"}
    bundle.config["hooks"] = {
        "prestart": [hook(recorder, log, "prestart")],
        "createRuntime": [hook(recorder, log, "createRuntime", "x y"),
                          hook(recorder, log, "createRuntime2")],
        "createContainer": [hook(recorder, log, "createContainer")],
        "poststart": [hook(recorder, log, "poststart")],
        "poststop": [hook(recorder, log, "poststop")],
    }
    bundle.args("sleep", "30").write()
    # the runtime's own environment does not reach the hooks
    runtime("create", "--bundle", bundle.path, bundle.id,
            env={"PATH": os.environ["PATH"], "LEAK_CHECK": "1"})
    pid = runtime.state(bundle.id)["pid"]
    container_mnt, container_pidns = host_ns("mnt", pid), host_ns("pid_for_children", pid)
    assert [r["name"] for r in records(log)] == ["prestart", "createRuntime", "createRuntime2",
                                                 "createContainer"]
    runtime("start", bundle.id)
    assert [r["name"] for r in records(log)][4:] == ["poststart"]
    runtime("kill", bundle.id, "KILL")
    wait_status(runtime, bundle.id, "stopped")
    runtime("delete", bundle.id)
    recs = records(log)
    assert [r["name"] for r in recs] == ["prestart", "createRuntime", "createRuntime2",
                                         "createContainer", "poststart", "poststop"]
    by_name = {r["name"]: r for r in recs}

    for r in recs:
        assert r["env"].split() == ["HOOK_VAR=a", "b", "PATH=/usr/bin:/bin"], r["name"]
        st = r["state"]
        assert st["id"] == bundle.id and st["bundle"] == bundle.path
        assert st["ociVersion"] == "1.3.0"
        assert st["annotations"] == {"org.test": "yes"}
    assert by_name["createRuntime"]["args"] == "createRuntime x y"

    for name in ("prestart", "createRuntime", "createRuntime2", "poststart", "poststop"):
        assert by_name[name]["mnt"] == host_ns("mnt"), name
        assert by_name[name]["pidns"] == host_ns("pid"), name
    assert by_name["createContainer"]["mnt"] == container_mnt
    assert by_name["createContainer"]["pidns"] == container_pidns

    for name in ("prestart", "createRuntime", "createRuntime2"):
        assert by_name[name]["state"]["status"] == "creating"
        assert by_name[name]["state"]["pid"] == pid
    # in the container's namespaces the pid is the one seen there
    assert by_name["createContainer"]["state"]["status"] == "creating"
    assert by_name["createContainer"]["state"]["pid"] == 1
    assert by_name["poststart"]["state"]["status"] == "running"
    assert by_name["poststart"]["state"]["pid"] == pid
    assert by_name["poststop"]["state"]["status"] == "stopped"




def test_large_state_reaches_a_create_container_hook(runtime, bundle, tmp_path, recorder):
    """The state crosses the create protocol's socket to the init: 300 KB of
    annotations is larger than one packet."""
    log = str(tmp_path / "hooks.log")
    big = {f"org.test.{i}": "v" * 100_000 for i in range(3)}
    bundle.config["annotations"] = big
    bundle.config["hooks"] = {"createContainer": [hook(recorder, log, "createContainer")]}
    bundle.args("true").write()
    runtime("create", "--bundle", bundle.path, bundle.id)
    [rec] = records(log)
    assert rec["state"]["annotations"] == big
    assert runtime.state(bundle.id)["annotations"] == big
    runtime("delete", "--force", bundle.id)


def start_or_kill(runtime, bundle, timeout=2):
    """``start``, but kill the container's init if the lock bug makes it hang."""
    import subprocess

    pid = runtime.state(bundle.id)["pid"]
    try:
        return runtime("start", bundle.id, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(pid, 9)   # our container's init, holding the state lock
        wait_status(runtime, bundle.id, "stopped")
        raise AssertionError("start hung") from None


def test_start_container_hook(runtime, bundle, tmp_path):
    logdir = tmp_path / "in-container"
    logdir.mkdir()
    # startContainer's path resolves in the container: the recorder is in the rootfs
    with open(os.path.join(bundle.rootfs, "recorder.sh"), "w") as f:
        f.write(RECORDER)
    os.chmod(os.path.join(bundle.rootfs, "recorder.sh"), 0o755)
    bundle.config["mounts"].append({"destination": "/hooklog", "type": "bind",
                                    "source": str(logdir), "options": ["bind"]})
    bundle.config["hooks"] = {
        "startContainer": [hook("/recorder.sh", "/hooklog/log", "startContainer")]}
    bundle.sh("echo program > /hooklog/program; exec sleep 30").write()
    runtime("create", "--bundle", bundle.path, bundle.id)
    try:
        pid = runtime.state(bundle.id)["pid"]
        assert not (logdir / "log").exists()
        assert start_or_kill(runtime, bundle).returncode == 0
        (rec,) = records(str(logdir / "log"))
        assert rec["mnt"] == host_ns("mnt", pid) and rec["pidns"] == host_ns("pid", pid)
        assert rec["state"]["pid"] == 1 and rec["state"]["id"] == bundle.id
        assert rec["env"].split() == ["HOOK_VAR=a", "b", "PATH=/usr/bin:/bin"]
        wait_for_file = time.monotonic() + 5
        while not (logdir / "program").exists() and time.monotonic() < wait_for_file:
            time.sleep(0.01)
        assert (logdir / "program").exists()
    finally:
        runtime("delete", "--force", bundle.id)


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create(runtime, bundle, tmp_path, kind):
    bundle.config["hooks"] = {kind: [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"]}]}
    bundle.write()
    log = tmp_path / "log.json"
    rt = type(runtime)(runtime.root, log=log)
    res = rt("create", "--bundle", bundle.path, bundle.id, check=False)
    assert res.returncode == 1
    line = res.stderr.strip()
    assert "\n" not in line
    assert f"{kind} hook #0" in line and "exit status 3" in line
    assert "to-out" in line and "to-err" in line
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == line
    assert_nothing_left(runtime, bundle)


def test_failing_create_hook_still_runs_poststop(runtime, bundle, tmp_path):
    marker = tmp_path / "poststop-ran"
    bundle.config["hooks"] = {
        "createRuntime": [{"path": "/bin/false"}],
        "poststop": [{"path": "/bin/touch", "args": ["touch", str(marker)]}]}
    bundle.write()
    assert runtime("create", "--bundle", bundle.path, bundle.id, check=False).returncode == 1
    assert marker.exists()


def test_hook_timeout(runtime, bundle):
    bundle.config["hooks"] = {"createRuntime": [
        {"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]}
    bundle.write()
    started = time.monotonic()
    res = runtime("create", "--bundle", bundle.path, bundle.id, check=False)
    assert time.monotonic() - started < 5
    assert res.returncode == 1
    assert "createRuntime hook #0" in res.stderr and "timed out" in res.stderr
    assert_nothing_left(runtime, bundle)


def test_missing_hook_binary_fails_create(runtime, bundle):
    bundle.config["hooks"] = {"prestart": [{"path": "/no/such/hook"}]}
    bundle.write()
    res = runtime("create", "--bundle", bundle.path, bundle.id, check=False)
    assert res.returncode == 1
    assert "prestart hook #0" in res.stderr and "/no/such/hook" in res.stderr
    assert_nothing_left(runtime, bundle)


def test_failing_start_container_hook(runtime, bundle):
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}]}
    bundle.args("sleep", "30").write()
    runtime("create", "--bundle", bundle.path, bundle.id)
    try:
        res = start_or_kill(runtime, bundle)
        assert res.returncode == 1
        assert "startContainer hook #0" in res.stderr and "exit status 4" in res.stderr
        # runtime.md lifecycle step 7: stop the container and go on at step 12,
        # its destruction
        assert "does not exist" in runtime("state", bundle.id, check=False).stderr
        assert_nothing_left(runtime, bundle)
    finally:
        runtime("delete", "--force", bundle.id)


def test_failing_poststart_hook_stops_the_container(runtime, bundle):
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    bundle.args("sleep", "30").write()
    runtime("create", "--bundle", bundle.path, bundle.id)
    res = runtime("start", bundle.id, check=False)
    assert res.returncode == 1
    assert "poststart hook #0" in res.stderr
    # step 9: stop the container and go on at step 12, its destruction
    assert "does not exist" in runtime("state", bundle.id, check=False).stderr
    assert_nothing_left(runtime, bundle)


def test_failing_poststop_hook_only_warns(runtime, bundle, tmp_path):
    marker = tmp_path / "second-ran"
    bundle.config["hooks"] = {"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]},
        {"path": "/bin/touch", "args": ["touch", str(marker)]}]}
    bundle.args("true").write()
    res = runtime("run", "--bundle", bundle.path, bundle.id)
    assert res.returncode == 0
    assert "level=warning" in res.stderr and "poststop hook #0" in res.stderr
    assert marker.exists()
    assert runtime.ids() == []
