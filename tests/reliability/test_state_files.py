"""Malformed state under --root: ``state``, ``list`` and ``delete --force`` report it in
one line, never with Python in it, and ``delete --force`` removes it.

Each case plants one broken entry next to a healthy created container (which must
keep working), then checks the three commands and the host afterwards."""

import json
import os
import subprocess

import pytest

from . import relkit
from .relkit import check_error

GOOD = {"id": "bad", "pid": 0, "status": "stopped", "bundle": "/nonexistent",
        "rootfs": "/nonexistent/rootfs", "created": "2024-01-01T00:00:00Z", "owner": "root"}


def _state(**changes):
    st = dict(GOOD)
    st.update(changes)
    return json.dumps(st).encode()


CASES = {
    "truncated": b'{"id": "bad", "pid": 12',
    "empty": b"",
    "not-utf8": b'{"id": "\xff\xfe"}',
    "array": b"[]",
    "number": b"42",
    "null": b"null",
    "pid-string": _state(pid="abc"),
    "pid-list": _state(pid=[1]),
    "pid-huge": _state(pid=2**70),
    "pid-negative": _state(pid=-5, startTime=1),
    "pid-float": _state(pid=1.5),
    "starttime-string": _state(pid=999999999, startTime="x"),
    "status-number": _state(status=7),
    "bundle-number": _state(bundle=5),
    "annotations-string": _state(annotations="x"),
    "cgroup-string": _state(cgroup="x"),
    "cgroup-paths-string": _state(cgroup={"version": 1, "paths": "x"}),
    "cgroup-unknown-version": _state(cgroup={"version": 9}),
    "creating-dead": _state(status="creating", pid=999999999, startTime=1),
    "deep": b'{"x":' + b"[" * 100000 + b"]" * 100000 + b"}",
}


def _plant(rel, kind, data=None):
    """The broken entry ``bad`` under the root (the root exists: a healthy container
    was created first)."""
    os.makedirs(rel.root, exist_ok=True)
    path = os.path.join(rel.root, "bad")
    if kind == "stray-file":
        with open(path, "w") as f:
            f.write("not a container\n")
    elif kind == "no-state-json":
        os.mkdir(path, 0o700)
    elif kind == "state-is-dir":
        os.makedirs(os.path.join(path, "state.json"))
    elif kind == "state-symlink":
        os.mkdir(path, 0o700)
        os.symlink("/etc/passwd", os.path.join(path, "state.json"))
    elif kind == "dangling-dir-symlink":
        os.symlink("/nonexistent-dir", path)
    else:
        os.mkdir(path, 0o700)
        with open(os.path.join(path, "state.json"), "wb") as f:
            f.write(data)
    return path


KINDS = sorted(CASES) + ["stray-file", "no-state-json", "state-is-dir", "state-symlink",
                         "dangling-dir-symlink"]

#: cases that fail because of a runtime bug, with the diagnosis (strict xfail); all
#: the bugs found here are fixed
BUGS = {}


def _params():
    out = []
    for k in KINDS:
        marks = [pytest.mark.xfail(reason=BUGS[k], strict=True)] if k in BUGS else []
        out.append(pytest.param(k, marks=marks, id=k))
    return out


@pytest.mark.parametrize("kind", _params())
def test_malformed_state_entry(rel, kind):
    relkit.assert_ok(rel.create("good"))
    path = _plant(rel, kind, CASES.get(kind))
    relkit.FIGURES.add("state files: malformed entries tried")
    try:
        res = rel.rt("state", "bad")
        check_error(res)
        if res.rc == 0:
            st = json.loads(res.out)
            assert st["id"] == "bad" and st["status"] in ("stopped", "creating"), res
            assert isinstance(st["pid"], int), res

        listed = rel.rt("list")
        check_error(listed)
        assert listed.rc == 0 and "good" in listed.out, listed
        as_json = rel.rt("list", "-f", "json")
        assert as_json.rc == 0, as_json
        assert "good" in [c["id"] for c in json.loads(as_json.out)], as_json

        gone = rel.rt("delete", "--force", "bad")
        check_error(gone)
        assert gone.rc == 0, gone
        assert not os.path.lexists(path), f"delete --force left {path}: {os.listdir(rel.root)}"

        # the healthy neighbour is untouched and still works
        assert rel.rt.state("good")["status"] == "created"
        relkit.assert_ok(rel.rt("start", "good"))
    finally:
        # whatever failed, leave the host clean for the fixture's leak check
        if os.path.isdir(path) and not os.path.islink(path):
            relkit.remove_tree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        relkit.assert_ok(rel.rt("delete", "--force", "good"))


def test_state_of_a_dead_pid_without_start_time_is_not_running(rel):
    """A state file (or a create killed between its writes) naming a pid that does
    not exist, with no start time: the container is not running."""
    _plant(rel, "x", _state(status="running", pid=4194000))
    os.makedirs(rel.root, exist_ok=True)
    res = rel.rt("state", "bad")
    check_error(res)
    try:
        assert res.rc != 0 or json.loads(res.out)["status"] == "stopped", \
            f"a pid that does not exist is reported alive: {res.out}"
    finally:
        relkit.assert_ok(rel.rt("delete", "--force", "bad"))



def test_foreign_process_with_a_reused_pid_is_not_killed(rel):
    """state.json names a live process that is not the container (wrong start time):
    the status is stopped and delete --force leaves that process alone."""
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        _plant(rel, "x", _state(status="running", pid=bystander.pid, startTime=1))
        res = rel.rt("state", "bad")
        assert res.rc == 0 and json.loads(res.out)["status"] == "stopped", res
        relkit.assert_ok(rel.rt("delete", "--force", "bad"))
        assert bystander.poll() is None, "delete --force killed a process that is not its own"
    finally:
        bystander.kill()
        bystander.wait()


def test_corrupted_state_of_a_live_container(rel):
    """The state file of a running container is truncated: the commands say so in one
    line, and delete --force still removes the container: its processes, cgroup and
    state directory (the saved config.json names the cgroup)."""
    before = rel.checker.snapshot()
    pid = rel.run_container("live")
    with open(os.path.join(rel.root, "live", "state.json"), "r+b") as f:
        f.truncate(10)
    for args in (("state", "live"), ("list",), ("kill", "live", "KILL")):
        check_error(rel.rt(*args))
    res = rel.rt("delete", "--force", "live")
    check_error(res)
    try:
        assert res.rc == 0, res
        assert not os.path.lexists(os.path.join(rel.root, "live")), "state directory left"
        relkit.wait_for(lambda: not relkit.alive(pid), timeout=5, what="the container to die")
    finally:
        if relkit.alive(pid):
            os.kill(pid, 9)  # our container
        rel.checker.cleanup(rel.checker.check(before))  # its cgroup and state directory

