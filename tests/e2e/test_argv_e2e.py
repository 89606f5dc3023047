"""What the clients pass to the runtime, as logged by the argv wrapper, checked against
/work/shared/reference/clients.md (and docs/clients.md).  The full log of a run is
``/tmp/e2e-*/argv.log`` (kept with E2E_KEEP=1): one line per call, tab-separated
pid, cwd, argv."""

import os
import shutil

import pytest

from e2elib import IMAGE, run_pty, split_global

pytestmark = pytest.mark.e2e


def _calls_for(e2e, cid):
    return [dict(c, parts=split_global(c["argv"])) for c in e2e.calls(containing=cid)]


def _sub(calls, name):
    return [c for c in calls if c["parts"][1] == name]


def _opt(args, flag):
    """Value of ``flag`` in args, as ``--flag value`` or ``--flag=value``."""
    for i, a in enumerate(args):
        if a == flag:
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def test_podman_calls(pm, e2e):
    name = pm.start_sleeper()
    cid = pm.container_id(name)
    pm("exec", name, "true", check=True)
    pm("exec", "-t", name, "true", check=True)
    pm("pause", name, check=True)
    pm("unpause", name, check=True)
    pm("update", "--memory", "96m", name, check=True)
    pm("stop", "-t", "20", name, check=True, timeout=40)
    pm("rm", name, check=True)
    calls = _calls_for(e2e, cid)
    subs = [c["parts"][1] for c in calls]

    # conmon: --log-format=json --log <userdata>/oci-log create --bundle B
    #         --pid-file P <id>, then podman: start <id>
    (create,) = _sub(calls, "create")
    glob, _, args = create["parts"]
    assert glob[0] == "--log-format=json" and glob[1] == "--log"
    assert glob[2].endswith("/userdata/oci-log")
    bundle = _opt(args, "--bundle")
    assert bundle.endswith(f"/{cid}/userdata") and os.path.isabs(bundle)
    assert _opt(args, "--pid-file").endswith("/userdata/pidfile")
    assert "--console-socket" not in args
    assert args[-1] == cid
    (start,) = _sub(calls, "start")
    assert start["argv"] == ["start", cid]
    assert subs.index("create") < subs.index("start")

    # exec: always --detach; --tty and --console-socket only for -t; env, user, cwd
    # and terminal come in the --process JSON
    plain, tty = _sub(calls, "exec")
    for ex in (plain, tty):
        glob, _, args = ex["parts"]
        assert glob[0] == "--log-format=json" and glob[1] == "--log"
        assert _opt(args, "--pid-file") and _opt(args, "--process")
        assert "--detach" in args and args[-1] == cid
    assert "--tty" not in plain["parts"][2] and "--console-socket" not in plain["parts"][2]
    assert "--tty" in tty["parts"][2] and _opt(tty["parts"][2], "--console-socket")

    assert [c["argv"] for c in _sub(calls, "pause")] == [["pause", cid]]
    assert [c["argv"] for c in _sub(calls, "resume")] == [["resume", cid]]
    (update,) = _sub(calls, "update")
    assert update["argv"][0] == "update" and update["argv"][-1] == cid
    assert _opt(update["argv"], "--resources")
    # stop = kill <id> 15 (signal numbers only, never --all)
    assert ["kill", cid, "15"] in [c["argv"] for c in _sub(calls, "kill")]
    assert not any("--all" in c["argv"] for c in calls)
    deletes = _sub(calls, "delete")
    assert deletes and all(c["argv"] == ["delete", "--force", cid] for c in deletes)
    # neither state nor list nor events
    assert not set(subs) & {"state", "list", "events", "ps"}


def test_podman_kill_signal_number(pm, e2e):
    name = pm.start_sleeper(trap="trap 'exit 42' USR1;")
    cid = pm.container_id(name)
    pm("kill", "-s", "SIGUSR1", name, check=True)
    assert pm("wait", name).stdout.strip() == "42"
    pm("rm", name, check=True)
    assert ["kill", cid, "10"] in [c["argv"] for c in _sub(_calls_for(e2e, cid), "kill")]


def test_podman_runtime_supports_json_matches_name(pm, e2e):
    """podman adds --log-format=json --log only for runtimes whose *name* is in
    runtime_supports_json: the containers.conf key, or the base name of a path."""
    other = os.path.join(e2e.base, "other")
    os.makedirs(other, exist_ok=True)
    shutil.copy(e2e.wrapper, os.path.join(other, "not-listed"))
    cases = {
        "runtime": True,                                    # key, listed
        "runtime-nojson": False,                            # key, same binary, not listed
        e2e.wrapper: True,                                  # path .../runtime
        os.path.join(other, "not-listed"): False,           # path, base name not listed
    }
    for rt, expect_json in cases.items():
        name = pm.name()
        pm.run("--rm", IMAGE, "true", name=name, runtime=rt, check=True)
        creates = [c for c in e2e.calls() if "create" in c["argv"]]
        create = creates[-1]["argv"]
        assert ("--log-format=json" in create) == expect_json, (rt, create)


def test_containerd_calls(ct, e2e):
    cid = ct.start_sleeper()
    ct("tasks", "exec", "--exec-id", "x1", cid, "true", check=True)
    rc, out = run_pty(e2e.ctr_cmd("tasks", "exec", "-t", "--exec-id", "x2", cid, "true"))
    assert rc == 0, out
    ct("tasks", "ps", cid, check=True)
    ct("tasks", "pause", cid, check=True)
    ct("tasks", "resume", cid, check=True)
    ct("tasks", "kill", cid, check=True)
    ct.wait_status(cid, "STOPPED")
    ct.remove_task(cid)
    ct("containers", "rm", cid, check=True)

    calls = _calls_for(e2e, cid)
    bundle = os.path.join(e2e.base, "ctd", "state", "io.containerd.runtime.v2.task",
                          e2e.ctd_ns, cid)
    for c in calls:  # the same global flags on every call, cwd = the bundle
        assert c["parts"][0] == ["--root", f"{e2e.ctd_runc_root}/{e2e.ctd_ns}",
                                 "--log", f"{bundle}/log.json", "--log-format", "json"], c
        assert c["cwd"] == bundle
    subs = [c["parts"][1] for c in calls]

    (create,) = _sub(calls, "create")
    args = create["parts"][2]
    assert _opt(args, "--bundle") == bundle
    assert _opt(args, "--pid-file") == f"{bundle}/init.pid"
    assert "--console-socket" not in args and args[-1] == cid
    assert [c["parts"][2] for c in _sub(calls, "start")] == [[cid]]

    plain, tty = _sub(calls, "exec")
    for ex, execid in ((plain, "x1"), (tty, "x2")):
        args = ex["parts"][2]
        assert _opt(args, "--process") and "--detach" in args and args[-1] == cid
        assert _opt(args, "--pid-file") == f"{bundle}/{execid}.pid"
    assert "--console-socket" not in plain["parts"][2]
    assert _opt(tty["parts"][2], "--console-socket")
    assert "--tty" not in tty["parts"][2]  # terminal comes in the process JSON

    assert [c["parts"][2] for c in _sub(calls, "ps")] == [["--format", "json", cid]]
    assert [c["parts"][2] for c in _sub(calls, "pause")] == [[cid]]
    assert [c["parts"][2] for c in _sub(calls, "resume")] == [[cid]]
    assert [c["parts"][2] for c in _sub(calls, "kill")] == [[cid, "15"]]
    # the shim's delete, then the shim cleanup binary's delete --force
    assert [c["parts"][2] for c in _sub(calls, "delete")] == [[cid], ["--force", cid]]
    assert subs.index("create") < subs.index("start") < subs.index("exec")
    assert subs[-2:] == ["delete", "delete"]


def test_containerd_rm_force_and_signal_numbers(ct, e2e):
    cid = ct.start_sleeper(trap="trap 'exit 42' USR1;")
    ct("tasks", "kill", "-s", "SIGUSR1", cid, check=True)
    ct.wait_status(cid, "STOPPED")
    assert ct.remove_task(cid) == 42
    ct("containers", "rm", cid, check=True)
    assert ["kill", cid, "10"] in [[c["parts"][1], *c["parts"][2]]
                                   for c in _calls_for(e2e, cid)]

    cid = ct.start_sleeper()
    ct("tasks", "rm", "-f", cid, check=True)
    ct("containers", "rm", cid, check=True)
    kills = [c["parts"][2] for c in _sub(_calls_for(e2e, cid), "kill")]
    assert kills == [["--all", cid, "9"]]
