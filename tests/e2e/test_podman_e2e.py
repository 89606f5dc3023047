"""podman 4.3 + conmon driving the runtime under test (behind the argv logger)."""

import os

import pytest

from e2elib import IMAGE, frozen, wait_for

pytestmark = pytest.mark.e2e

# Read a cgroup limit from inside the container, v1 layout first, then v2.
MEMORY_LIMIT = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
                " || cat /sys/fs/cgroup/memory.max")
PIDS_LIMIT = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"


def test_run_rm_output_and_exit_code(pm):
    name = pm.name()
    r = pm.run("--rm", IMAGE, "sh", "-c", "echo out-$((6*7)); echo err-line >&2; exit 3",
               name=name)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out-42\n"
    assert "err-line" in r.stderr
    assert not pm.exists(name)
    r = pm.run("--rm", IMAGE, "true")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert pm.run("--rm", IMAGE, "sh", "-c", "exit 255").returncode == 255


def test_detached_exec_stop_rm(pm):
    name = pm.start_sleeper()
    assert pm.inspect(name, "{{.State.Status}}") == "running"
    pid = int(pm.inspect(name, "{{.State.Pid}}"))
    init_cmd = _cmdline(pid)
    assert init_cmd and init_cmd.startswith(b"sh\0-c\0trap")

    r = pm("exec", name, "sh", "-c", "echo exec-$((1+1)); cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("exec-2\nsh -c trap")

    r = pm("exec", name, "sh", "-c", "exit 7")
    assert r.returncode == 7

    r = pm("exec", "-t", name, "sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo both-tty")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("/dev/pts/")
    assert "both-tty" in r.stdout

    r = pm("exec", "-e", "E2E_VAR=from-exec", "-w", "/tmp", "-u", "1000:1000", name,
           "sh", "-c", "echo $E2E_VAR; pwd; id -u; id -g")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["from-exec", "/tmp", "1000", "1000"]

    r = pm("stop", "-t", "20", name, timeout=40)
    assert r.returncode == 0, r.stderr
    assert pm.inspect(name, "{{.State.Status}}") == "exited"
    assert pm.inspect(name, "{{.State.ExitCode}}") == "143"
    assert _cmdline(pid) != init_cmd  # the container's init is gone (pid not reused)

    r = pm("rm", name)
    assert r.returncode == 0, r.stderr
    assert not pm.exists(name)


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def test_kill_signal(pm):
    name = pm.start_sleeper(trap="trap 'exit 42' USR1;")
    r = pm("kill", "-s", "USR1", name)
    assert r.returncode == 0, r.stderr
    r = pm("wait", name)
    assert r.stdout.strip() == "42", r.stderr
    pm("rm", name, check=True)

    name = pm.start_sleeper()
    pm("kill", name, check=True)  # default SIGKILL
    assert pm("wait", name).stdout.strip() == "137"
    pm("rm", name, check=True)


def test_pause_unpause(pm):
    name = pm.name()
    pm.run("-d", IMAGE, "sh", "-c",
           "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done",
           name=name, check=True)
    pid = int(pm.inspect(name, "{{.State.Pid}}"))
    r = pm("pause", name)
    assert r.returncode == 0, r.stderr
    assert pm.inspect(name, "{{.State.Status}}") == "paused"
    assert frozen(pid)
    r = pm("unpause", name)
    assert r.returncode == 0, r.stderr
    assert pm.inspect(name, "{{.State.Status}}") == "running"
    assert not frozen(pid)

    def count():
        return int(pm("exec", name, "cat", "/tmp/count", check=True).stdout)
    first = count()
    wait_for(lambda: count() > first, timeout=10, what="the loop to run again")
    pm("rm", "-f", "-t", "0", name, check=True)


def test_run_tty(pm):
    r = pm.run("--rm", "-t", IMAGE, "sh", "-c", "tty; [ -t 1 ] && echo is-a-tty")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("/dev/pts/")
    assert "is-a-tty" in r.stdout


def test_memory_and_pids_limits_visible_inside(pm):
    r = pm.run("--rm", "--memory", "64m", "--pids-limit", "77", IMAGE, "sh", "-c",
               f"{MEMORY_LIMIT}; {PIDS_LIMIT}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(64 << 20), "77"]


def test_update(pm):
    name = pm.start_sleeper()
    r = pm("exec", name, "sh", "-c", MEMORY_LIMIT)
    before = r.stdout.strip()
    r = pm("update", "--memory", "96m", "--cpu-shares", "300", name)
    assert r.returncode == 0, r.stderr
    r = pm("exec", name, "sh", "-c", MEMORY_LIMIT)
    assert r.stdout.strip() == str(96 << 20) != before
    r = pm("exec", name, "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || true")
    if r.stdout.strip():  # cgroup v1
        assert r.stdout.strip() == "300"
    pm("rm", "-f", "-t", "0", name, check=True)


def test_bind_volume(pm, e2e):
    host = os.path.join(e2e.base, e2e.unique("vol"))
    os.makedirs(host)
    with open(os.path.join(host, "in"), "w") as f:
        f.write("from-host\n")
    r = pm.run("--rm", "-v", f"{host}:/data", IMAGE, "sh", "-c",
               "cat /data/in; echo from-container > /data/out")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from-host\n"
    with open(os.path.join(host, "out")) as f:
        assert f.read() == "from-container\n"

    r = pm.run("--rm", "-v", f"{host}:/data:ro", IMAGE, "sh", "-c",
               "cat /data/in && echo x > /data/out2")
    assert r.returncode != 0
    assert "Read-only file system" in r.stderr
    assert not os.path.exists(os.path.join(host, "out2"))
