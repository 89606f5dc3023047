"""Signals and exit codes: ``run`` and ``exec`` report exits and signal deaths as a
shell does (128+n), a foreground ``run`` forwards SIGTERM/SIGINT/SIGHUP/SIGUSR1 to
the container, and ``run`` (a child subreaper) reaps the orphans of a container
without its own pid namespace while the container runs."""

import os
import signal
import time

import pytest

from . import relkit
from .relkit import check_error

NO_PIDNS = ["mount", "ipc", "uts", "network"]


def _run(rel, cid, script, namespaces=None, timeout=60):
    config = relkit.make_config(cid, ["sh", "-c", script], namespaces=namespaces)
    path = rel.bundle(cid, config)
    return rel.rt("run", "--bundle", path, cid, timeout=timeout)


@pytest.mark.parametrize("script,code,pidns", [
    ("exit 0", 0, True), ("exit 3", 3, True), ("exit 255", 255, True),
    ("kill -9 $$", 137, False), ("kill -TERM $$", 143, False), ("kill -SEGV $$", 139, False),
    ("sh -c 'kill -9 $$'; exit $?", 137, True),  # a child's signal death, as sh reports it
], ids=["exit0", "exit3", "exit255", "self-KILL-no-pidns", "self-TERM-no-pidns",
        "self-SEGV-no-pidns", "child-KILL"])
def test_run_exit_codes(rel, script, code, pidns):
    res = _run(rel, "ec", script, None if pidns else NO_PIDNS)
    assert res.rc == code, res
    relkit.FIGURES.add("signals: exit codes checked")


def test_run_reports_a_kill_from_outside(rel):
    config = relkit.make_config("kx", ["sleep", "100"])
    proc = rel.rt.popen("run", "--bundle", rel.bundle("kx", config), "kx")
    relkit.wait_for(lambda: (rel.rt.state("kx") or {}).get("status") == "running", what="running")
    relkit.assert_ok(rel.rt("kill", "kx", "KILL"))
    res = rel.rt.collect(proc, timeout=20)
    assert res.rc == 137, res
    relkit.FIGURES.add("signals: exit codes checked")


@pytest.mark.parametrize("script,code", [
    ("exit 7", 7), ("kill -9 $$", 137), ("kill -TERM $$", 143), ("kill -SEGV $$", 139),
], ids=["exit7", "self-KILL", "self-TERM", "self-SEGV"])
def test_exec_exit_codes(rel, script, code):
    rel.run_container("ex")
    res = rel.rt("exec", "ex", "sh", "-c", script)
    assert res.rc == code, res
    st = rel.rt.state("ex")
    assert st["status"] == "running", f"the exec'd process's death affected the container: {st}"
    relkit.assert_ok(rel.rt("delete", "--force", "ex"))
    relkit.FIGURES.add("signals: exit codes checked")


def test_exec_of_a_missing_program_fails_in_one_line(rel):
    rel.run_container("em")
    res = rel.rt("exec", "em", "/nonexistent")
    assert res.rc != 0, res
    check_error(res)
    relkit.assert_ok(rel.rt("delete", "--force", "em"))


TRAPS = ("trap 'exit 42' TERM; trap 'exit 43' INT; trap 'exit 44' HUP; trap 'exit 45' USR1; "
         "echo ready; while :; do sleep 0.05; done")


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 42), (signal.SIGINT, 43),
                                      (signal.SIGHUP, 44), (signal.SIGUSR1, 45)],
                         ids=["TERM", "INT", "HUP", "USR1"])
def test_foreground_run_forwards_signals(rel, sig, code):
    config = relkit.make_config("fw", ["sh", "-c", TRAPS])
    proc = rel.rt.popen("run", "--bundle", rel.bundle("fw", config), "fw")
    out = proc.files[0]
    relkit.wait_for(lambda: b"ready" in os.pread(out.fileno(), 100, 0), timeout=20,
                    what="the container to install its traps")
    proc.send_signal(sig)
    res = rel.rt.collect(proc, timeout=20)
    assert res.rc == code, f"{sig.name} to runtime run: {res}"
    relkit.FIGURES.add("signals: forwarded signals checked")


def test_sigterm_while_run_creates(rel):
    """SIGTERM to ``run`` the moment its state directory appears (create is under
    way): run must end (it may forward the signal once the container runs, or give
    up), and whatever it ends with, no container may be left behind."""
    config = relkit.make_config("early", ["sh", "-c", TRAPS])
    path = rel.bundle("early", config)
    proc = rel.rt.popen("run", "--bundle", path, "early")
    deadline = time.monotonic() + 10
    while not os.path.isdir(os.path.join(rel.root, "early")) and time.monotonic() < deadline:
        pass
    proc.send_signal(signal.SIGTERM)
    res = rel.rt.collect(proc, timeout=20)
    left = rel.rt.ids()
    rel.rt("delete", "--force", "early")
    relkit.FIGURES.add("signals: forwarded signals checked")
    assert res.rc is not None, "run hung after SIGTERM"
    assert res.rc in (42, 143), res
    assert not left, f"run killed by SIGTERM left {left}"



def _catches(pid, sig):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    except OSError:
        pass
    return False


def test_sigterm_as_soon_as_run_forwards_is_forwarded(rel):
    """SIGTERM the moment ``run`` catches it (create or start under way): run must
    not hang.  It queues the signal until the program runs, then forwards it: the
    shell exits 42 (trap set) or 143 (not yet).  No pid namespace: as pid 1 the
    shell would not die of a signal that comes before its trap (the kernel drops
    it), with runc as with us."""
    config = relkit.make_config("late", ["sh", "-c", TRAPS], namespaces=NO_PIDNS)
    path = rel.bundle("late", config)
    for _ in range(3):
        proc = rel.rt.popen("run", "--bundle", path, "late")
        relkit.wait_for(lambda: _catches(proc.pid, signal.SIGTERM) or proc.poll() is not None,
                        timeout=20, interval=0.0005, what="run to catch SIGTERM")
        proc.send_signal(signal.SIGTERM)
        res = rel.rt.collect(proc, timeout=5)
        rel.rt("delete", "--force", "late")
        relkit.FIGURES.add("signals: forwarded signals checked")
        assert res.rc in (42, 143), res


ORPHANS = "for i in 1 2 3 4 5; do (sleep 0.1 &); done; sleep 1.5; exit 5"


def test_run_reaps_orphans_while_the_container_runs(rel):
    """No pid namespace: the sleeps' parent subshells exit, the sleeps are re-parented
    to ``runtime run`` (the child subreaper) and exit after 0.1 s: they must not stay
    zombies until the container's init exits."""
    config = relkit.make_config("zr", ["sh", "-c", ORPHANS], namespaces=NO_PIDNS)
    proc = rel.rt.popen("run", "--bundle", rel.bundle("zr", config), "zr")
    time.sleep(1.0)
    zombies = relkit.zombies_of(proc.pid)
    res = rel.rt.collect(proc, timeout=20)
    assert res.rc == 5, res
    assert not zombies, f"zombies under runtime run while the container ran: {zombies}"



def test_run_returns_when_the_init_exits_and_kills_the_rest(rel):
    """No pid namespace: the init exits 5 while a child of it sleeps on; run returns
    5 at once and its delete kills the leftover (the fixture checks nothing leaks)."""
    config = relkit.make_config("rest", ["sh", "-c", "sleep 30 & exit 5"], namespaces=NO_PIDNS)
    t0 = time.monotonic()
    res = rel.rt("run", "--bundle", rel.bundle("rest", config), "rest", timeout=30)
    assert res.rc == 5, res
    assert time.monotonic() - t0 < 10, "run waited for the orphan"
    assert rel.rt.ids() == []
