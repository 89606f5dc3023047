"""containerd 1.6 + containerd-shim-runc-v2 driven by ctr, with the runtime under test
given as `ctr run --runc-binary` (behind the argv logger)."""

import json

import pytest

from e2elib import IMAGE, frozen, run, run_pty, wait_for

pytestmark = pytest.mark.e2e


def test_run_rm_output_and_exit_code(ct):
    cid = ct.name()
    r = ct.run("--rm", IMAGE, cid, "sh", "-c", "echo out-$((6*7)); echo err-line >&2; exit 5")
    assert r.returncode == 5, r.stderr
    assert r.stdout == "out-42\n"
    assert "err-line" in r.stderr
    assert cid not in ct.containers()


@pytest.mark.parametrize("code", [0, 1, 255])
def test_run_exit_codes(ct, code):
    r = ct.run("--rm", IMAGE, ct.name(), "sh", "-c", f"exit {code}")
    assert r.returncode == code, r.stderr


def test_run_tty(ct):
    rc, out = run_pty(ct.env.ctr_cmd("run", *ct.env.ctr_runtime_flags(), "--rm", "-t", IMAGE,
                                     ct.name(), "sh", "-c", "tty; [ -t 1 ] && echo is-a-tty"))
    assert rc == 0, out
    assert out.startswith(b"/dev/pts/")
    assert b"is-a-tty" in out


def test_detached_task_exec_ps_pause_kill_rm(ct):
    cid = ct.start_sleeper()
    pid, status = ct.tasks()[cid]
    assert status == "RUNNING"

    # tasks exec, plain: output and exit code come back through the shim
    r = ct("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo exec-$((1+1)); exit 4")
    assert r.returncode == 4, r.stderr
    assert r.stdout == "exec-2\n"

    r = ct("tasks", "exec", "--exec-id", "e2", "--cwd", "/tmp", "--user", "1000", cid,
           "sh", "-c", "pwd; id -u")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["/tmp", "1000"]

    # tasks exec -t needs a terminal on ctr's side too
    rc, out = run_pty(ct.env.ctr_cmd("tasks", "exec", "-t", "--exec-id", "e3", cid,
                                     "sh", "-c", "tty; [ -t 0 ] && echo both-tty"))
    assert rc == 0, out
    assert out.startswith(b"/dev/pts/") and b"both-tty" in out

    # tasks ps lists the init pid (and the shell's sleep child)
    r = ct("tasks", "ps", cid, check=True)
    pids = [int(line.split()[0]) for line in r.stdout.splitlines()[1:] if line.strip()]
    assert pid in pids and len(pids) >= 2

    r = ct("tasks", "pause", cid)
    assert r.returncode == 0, r.stderr
    assert ct.status(cid) == "PAUSED"
    assert frozen(pid)
    r = ct("tasks", "resume", cid)
    assert r.returncode == 0, r.stderr
    assert ct.status(cid) == "RUNNING"
    assert not frozen(pid)

    r = ct("tasks", "kill", cid)  # SIGTERM: the trap exits 143
    assert r.returncode == 0, r.stderr
    ct.wait_status(cid, "STOPPED")
    assert ct.remove_task(cid) == 143
    ct("containers", "rm", cid, check=True)
    assert cid not in ct.containers()


def test_kill_signal(ct):
    cid = ct.start_sleeper(trap="trap 'exit 42' USR1;")
    r = ct("tasks", "kill", "-s", "SIGUSR1", cid)
    assert r.returncode == 0, r.stderr
    ct.wait_status(cid, "STOPPED")
    assert ct.remove_task(cid) == 42
    ct("containers", "rm", cid, check=True)


def test_tasks_rm_force_running(ct):
    cid = ct.start_sleeper()
    pid = ct.tasks()[cid][0]
    r = ct("tasks", "rm", "-f", cid)
    assert r.returncode == 0, r.stderr
    assert cid not in ct.tasks()
    wait_for(lambda: not _alive(pid), timeout=5, what="the init process to be gone")
    ct("containers", "rm", cid, check=True)


def test_tasks_ps_json_from_runtime(ct, e2e):
    """`ctr tasks ps` is answered from `runtime ps --format json`: check the runtime's
    own answer too, since containerd parses it."""
    cid = ct.start_sleeper()
    pid = ct.tasks()[cid][0]
    r = run([e2e.runtime_binary, "--root", f"{e2e.ctd_runc_root}/{e2e.ctd_ns}", "ps",
             "--format", "json", cid], check=True)
    pids = json.loads(r.stdout)
    assert isinstance(pids, list) and pid in pids
    ct("tasks", "rm", "-f", cid, check=True)
    ct("containers", "rm", cid, check=True)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
