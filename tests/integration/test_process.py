"""process: args, env, cwd, user, umask, rlimits, capabilities, noNewPrivileges,
oomScoreAdj, terminal and console socket, inherited fds, and the exec fifo."""

import os
import select
import subprocess
import time

import pytest

from support import (Background, output, run, sections, status_fields, wait_for, wait_status)

pytestmark = pytest.mark.integration


def test_args_are_passed_verbatim(runtime, bundle):
    bundle.args("/bin/echo", "a  b", "$HOME", "'q'", "*", "")
    assert output(runtime, bundle) == "a  b $HOME 'q' * \n"


def test_env_is_exactly_the_configured_one(runtime, bundle):
    bundle.process["env"] = ["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=", "EQ=a=b"]
    bundle.args("env")
    env = dict(line.split("=", 1) for line in
               run(runtime, bundle, check=True).stdout.splitlines())
    # HOME defaults to the user's home in the container's /etc/passwd
    assert env == {"PATH": "/bin:/usr/bin", "FOO": "bar baz", "EMPTY": "", "EQ": "a=b",
                   "HOME": "/root"}


# Containers whose process is not root run with umask 0 (UMASK0): see
# test_non_root_process_with_the_default_umask.
UMASK0 = {"umask": 0}


def test_non_root_process_with_the_default_umask(runtime, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.args("id", "-u")
    assert output(runtime, bundle, umask=0o022) == "1000\n"


def test_home_of_another_user_and_explicit_home(runtime, make_bundle):
    b1 = make_bundle()
    b1.process["user"] = {"uid": 1000, "gid": 1000}
    b1.sh("echo $HOME")
    assert output(runtime, b1, **UMASK0) == "/home/user\n"
    b2 = make_bundle()
    b2.process["env"].append("HOME=/elsewhere")
    b2.sh("echo $HOME")
    assert output(runtime, b2) == "/elsewhere\n"
    b3 = make_bundle()
    b3.process["user"] = {"uid": 4242, "gid": 4242}   # not in /etc/passwd
    b3.sh("echo $HOME")
    assert output(runtime, b3, **UMASK0) == "/\n"


def test_cwd_is_created_when_missing(runtime, bundle):
    bundle.process["cwd"] = "/work/dir"
    bundle.args("pwd")
    assert output(runtime, bundle) == "/work/dir\n"
    assert os.path.isdir(os.path.join(bundle.rootfs, "work", "dir"))


def test_user_groups_and_umask(runtime, bundle):
    bundle.process["user"] = {"uid": 1000, "gid": 100, "additionalGids": [5, 65534],
                              "umask": 0o027}
    bundle.process["cwd"] = "/tmp"
    bundle.sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo === id; id;"
              " echo === umask; umask; touch f; mkdir d; stat -c '%a %u %g' f d")
    sec = sections("=== status\n" + output(runtime, bundle, **UMASK0))
    st = status_fields(sec["status"])
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["100"] * 4
    assert st["Groups"].split() == ["5", "65534"]
    assert sec["id"].strip() == "uid=1000(user) gid=100(users) groups=5(tty),65534(nogroup)"
    lines = sec["umask"].splitlines()
    assert lines == ["0027", "640 1000 100", "750 1000 100"]


def test_umask_is_inherited_when_unset(runtime, bundle):
    bundle.args("sh", "-c", "umask")
    bundle.write()
    res = runtime("run", "--bundle", bundle.path, bundle.id, umask=0o077)
    assert res.stdout == "0077\n"


def test_rlimits(runtime, bundle):
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615},
        {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000},
    ]
    bundle.sh("ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc; echo ===; cat /proc/self/limits")
    out = output(runtime, bundle)
    head, limits = out.split("===\n")
    assert head.split() == ["123", "456", "0", "unlimited"]
    rows = {line[:26].strip(): line[26:].split()[:2] for line in limits.splitlines()[1:]}
    assert rows["Max open files"] == ["123", "456"]
    assert rows["Max processes"] == ["1000", "2000"]
    assert rows["Max core file size"] == ["0", "unlimited"]


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(runtime, bundle, nnp):
    bundle.process["noNewPrivileges"] = nnp
    bundle.args("grep", "NoNewPrivs", "/proc/self/status")
    assert output(runtime, bundle).split() == ["NoNewPrivs:", "1" if nnp else "0"]


def test_oom_score_adj(runtime, bundle):
    bundle.process["oomScoreAdj"] = 123
    bundle.args("cat", "/proc/self/oom_score_adj")
    assert output(runtime, bundle) == "123\n"


CAP = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10,
       "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21, "CAP_AUDIT_WRITE": 29}


def mask(*names):
    return sum(1 << CAP[n] for n in names)


def cap_masks(text):
    st = status_fields(text)
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


# After execve(2) the kernel recomputes permitted and effective from the sets the
# runtime left: for root, permitted = (inheritable | bounding), capped by the old
# permitted set under no_new_privs, and effective = permitted; for another uid
# running a file without capabilities, permitted = effective = ambient.
@pytest.mark.parametrize("case", ["root-nnp", "root", "user-ambient"])
def test_capabilities(runtime, bundle, case):
    if case == "root-nnp":
        caps = {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
                "permitted": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_CHOWN", "CAP_KILL"]}
        expected = {"CapBnd": mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"),
                    "CapPrm": mask("CAP_CHOWN", "CAP_KILL"), "CapEff": mask("CAP_CHOWN", "CAP_KILL"),
                    "CapInh": 0, "CapAmb": 0}
    elif case == "root":
        names = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        caps = {k: list(names) for k in ("bounding", "effective", "permitted", "inheritable",
                                         "ambient")}
        bundle.process["noNewPrivileges"] = False
        expected = {k: mask(*names) for k in ("CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb")}
    else:
        bundle.process["user"] = {"uid": 1000, "gid": 1000}
        caps = {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"],
                "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
                "permitted": ["CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"],
                "effective": ["CAP_KILL", "CAP_CHOWN"],
                "ambient": ["CAP_KILL", "CAP_NET_RAW"]}
        amb = mask("CAP_KILL", "CAP_NET_RAW")
        expected = {"CapBnd": mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"),
                    "CapInh": amb, "CapPrm": amb, "CapEff": amb, "CapAmb": amb}
    bundle.process["capabilities"] = caps
    bundle.args("cat", "/proc/self/status")
    assert cap_masks(output(runtime, bundle, **UMASK0)) == expected


def test_unknown_capability_is_ignored_with_a_warning(runtime, bundle):
    bundle.process["capabilities"] = {"bounding": ["CAP_KILL", "CAP_NOT_A_THING"],
                                      "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
    bundle.args("grep", "CapBnd", "/proc/self/status")
    res = run(runtime, bundle)
    assert int(res.stdout.split()[1], 16) == mask("CAP_KILL")
    assert "CAP_NOT_A_THING" in res.stderr and "level=warning" in res.stderr


# -- terminal ---------------------------------------------------------------------------
def read_until(fd, needle, timeout=10.0, raw=False):
    """Read the pty master until ``needle`` shows up (or EOF/EIO); the text with
    \r\n as \n, or (``raw``) the bytes as read."""
    data = b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in (data if raw else data.replace(b"\r\n", b"\n")):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"timed out waiting for {needle!r}; got {data!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:      # EIO: every slave fd is closed
            break
        if not chunk:
            break
        data += chunk
    return data if raw else data.decode(errors="replace").replace("\r\n", "\n")


def test_terminal_with_console_socket(runtime, bundle, console_socket):
    bundle.process["terminal"] = True
    bundle.process["consoleSize"] = {"height": 33, "width": 111}
    bundle.args("sh")
    with open(os.path.join(bundle.rootfs, "script"), "w") as f:
        f.write("echo BEGIN; stty size; tty; stat -c '%t %F' /dev/console /dev/pts/0;"
                " for f in 0 1 2; do readlink /proc/$$/fd/$f; done | tr '\\n' ' '; echo;"
                " echo through-the-console > /dev/console; echo END\n")
    bundle.write()
    runtime("create", "--bundle", bundle.path, "--console-socket", console_socket.path, bundle.id)
    try:
        master = console_socket.receive()
        runtime("start", bundle.id)
        os.write(master, b"sh /script\n")
        out = read_until(master, "\nEND\n")
        lines = out.split("\nBEGIN\n")[1].split("\nEND\n")[0].splitlines()
        assert lines[0] == "33 111"
        assert lines[1] == "/dev/pts/0"
        # /dev/console is the pty's slave (major 136)
        assert lines[2] == lines[3] == "88 character special file"
        assert lines[4].split() == ["/dev/pts/0"] * 3
        # and it is usable: what is written there reaches the console socket's master
        assert lines[5] == "through-the-console"
        os.write(master, b"exit 7\n")
        wait_status(runtime, bundle.id, "stopped")
    finally:
        runtime("delete", "--force", bundle.id)


def test_terminal_in_foreground_run(runtime, bundle):
    bundle.process["terminal"] = True
    bundle.process["consoleSize"] = {"height": 20, "width": 70}
    bundle.sh("stty size; tty; echo $TERM")
    res = run(runtime, bundle)
    # byte for byte what the program wrote: ONLCR is off on a pty the runtime proxies
    assert res.stdout == "20 70\n/dev/pts/0\nxterm\n"


def test_terminal_in_foreground_run_on_a_terminal(runtime, bundle, tmp_path):
    """On a terminal (put in raw mode by the runtime) the pty's \\r\\n stays: each
    line starts at the left margin, as with runc (no staircase)."""
    import pty

    bundle.process["terminal"] = True
    bundle.sh("echo line-a; echo line-b")
    bundle.write()
    master, slave = pty.openpty()
    err = open(tmp_path / "err", "wb")
    try:
        proc = subprocess.Popen(runtime.argv("run", "--bundle", bundle.path, bundle.id),
                                stdin=slave, stdout=slave, stderr=err)
        os.close(slave)
        data = read_until(master, "line-b\r\n", timeout=20, raw=True)
        assert proc.wait(timeout=20) == 0, (tmp_path / "err").read_text()
    finally:
        err.close()
        os.close(master)
    assert b"line-a\r\nline-b\r\n" in data, data


def test_terminal_in_foreground_exec(runtime, bundle, tmp_path):
    bundle.args("sleep", "30")
    bg = Background(runtime, bundle, tmp_path)
    try:
        res = runtime("exec", "-t", bundle.id, "sh", "-c", "tty; printf 'a\\nb\\n'")
        assert res.stdout == "/dev/pts/0\na\nb\n"
    finally:
        bg.delete()


def test_terminal_without_console_socket_fails_create(runtime, bundle):
    bundle.process["terminal"] = True
    bundle.write()
    res = runtime("create", "--bundle", bundle.path, bundle.id, check=False)
    assert res.returncode == 1
    assert "cannot allocate tty if runtime will detach without setting console socket" in res.stderr
    assert runtime.ids() == []


# -- file descriptors ------------------------------------------------------------------------
def test_only_stdio_reaches_the_container(runtime, bundle):
    bundle.sh("ls /proc/$$/fd; true")   # "; true": sh must not exec ls
    assert output(runtime, bundle).split() == ["0", "1", "2"]


def test_preserve_fds(runtime, bundle, tmp_path):
    (tmp_path / "three").write_text("preserved-3\n")
    bundle.sh("ls /proc/$$/fd; cat <&3; echo to-four >&4")
    bundle.write()
    four = tmp_path / "four"
    argv = runtime.argv("run", "--bundle", bundle.path, "--preserve-fds", "2", bundle.id)
    res = subprocess.run(["sh", "-c", 'exec 3<"$1" 4>"$2"; shift 2; exec "$@"', "sh",
                          str(tmp_path / "three"), str(four), *argv],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "1", "2", "3", "4", "preserved-3"]
    assert four.read_text() == "to-four\n"


def test_fds_beyond_preserve_fds_are_closed(runtime, bundle, tmp_path):
    (tmp_path / "f").write_text("x")
    bundle.sh("ls /proc/$$/fd; true")
    bundle.write()
    argv = runtime.argv("run", "--bundle", bundle.path, "--preserve-fds", "1", bundle.id)
    res = subprocess.run(["sh", "-c", 'exec 3<"$1" 4<"$1" 5<"$1"; shift; exec "$@"', "sh",
                          str(tmp_path / "f"), *argv], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "1", "2", "3"]


# -- exec fifo ------------------------------------------------------------------------------
def test_program_runs_only_after_start(runtime, bundle, tmp_path):
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    bundle.config["mounts"].append({"destination": "/ctl", "type": "bind", "source": str(ctl),
                                    "options": ["bind"]})
    bundle.sh("touch /ctl/started; exec sleep 30")
    c = Background(runtime, bundle, tmp_path, start=False)
    try:
        time.sleep(0.3)
        assert runtime.state(bundle.id)["status"] == "created"
        assert not (ctl / "started").exists()
        c.start()
        wait_for(lambda: (ctl / "started").exists(), what="the program to run")
        assert runtime.state(bundle.id)["status"] == "running"
    finally:
        c.delete()


def test_scheduling_memory_policy_and_personality(runtime, bundle):
    with open("/proc/self/status") as f:
        host_cpus = status_fields(f.read())["Cpus_allowed_list"]
    bundle.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    bundle.process["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    # for exec'd processes only: the init keeps the cgroup's cpus
    bundle.process["execCPUAffinity"] = {"initial": "0"}
    bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0"}
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    bundle.sh("echo === uname; uname -m; echo === ionice; ionice -p $$; echo === stat;"
              " cat /proc/self/stat; echo; echo === numa; head -1 /proc/self/numa_maps;"
              " echo === status; cat /proc/self/status")
    sec = sections(output(runtime, bundle))
    assert sec["uname"].strip() == "i686"
    assert sec["ionice"].strip() == "best-effort: prio 6"
    fields = sec["stat"].rsplit(")", 1)[1].split()   # fields[0] is field 3 of proc(5)
    assert fields[19 - 3] == "5"                      # nice
    assert fields[41 - 3] == "3"                      # policy: SCHED_BATCH
    assert " interleave:0 " in sec["numa"]
    assert status_fields(sec["status"])["Cpus_allowed_list"] == host_cpus


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="LINUX32 reports i686 on x86_64")
def test_exec_gets_personality_and_memory_policy(runtime, bundle, tmp_path):
    """linux.personality and linux.memoryPolicy hold for every process of the
    container, exec'd ones too."""
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    numa = os.path.exists("/proc/self/numa_maps")
    if numa:
        bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0"}
    bundle.args("sleep", "30")
    bg = Background(runtime, bundle, tmp_path)
    try:
        out = runtime("exec", bundle.id, "sh", "-c",
                      "uname -m; head -1 /proc/self/numa_maps 2>/dev/null; true").stdout
        lines = out.splitlines()
        assert lines[0] == "i686"
        if numa:
            assert " interleave:0 " in lines[1]
    finally:
        bg.delete()
