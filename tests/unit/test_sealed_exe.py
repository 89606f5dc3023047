"""The interpreter behind the runtime is never a writable file (issue 11.1): the C
launcher scripts/setup installs and the Python entry point's own re-exec
(runtime.linux.reexec_sealed), checked against each other.  The attack itself,
from inside a container, is in tests/integration/test_escapes.py."""

import fcntl
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LAUNCHER = os.path.join(os.path.dirname(sys.executable), "runtime")

# Report what this process runs from, after the runtime's entry step.
REPORT = """
import json, os, sys
sys.path.insert(0, {repo!r})
from runtime import linux
{before}
linux.reexec_sealed(sys.orig_argv)
exe = "/proc/self/exe"
fd = os.open(exe, os.O_RDONLY)
import fcntl
try:
    seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
except OSError:
    seals = None
try:
    os.close(os.open(exe, os.O_WRONLY))
    writable = "yes"
except OSError as e:
    writable = os.strerror(e.errno)
print(json.dumps({{"link": os.readlink(exe), "rdonly": bool(os.statvfs(exe).f_flag & os.ST_RDONLY),
                  "seals": seals, "same_inode": os.stat(exe).st_ino == os.stat(sys.executable).st_ino,
                  "writable": writable, "marker": os.environ.get(linux._SEALED_ENV),
                  "argv": sys.argv[1:]}}))
"""


def report(before="", *args):
    res = subprocess.run([sys.executable, "-I", "-c", REPORT.format(repo=REPO, before=before), *args],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_reexec_runs_the_interpreter_from_a_read_only_view():
    r = report("", "a", "b")
    assert r["link"] == "/" and r["rdonly"] and r["same_inode"]
    # the same inode, unwritable through this path (busy while we run, EROFS after)
    assert r["writable"] in ("Text file busy", "Read-only file system")
    assert r["marker"] is None                 # the loop guard is not left in the environment
    assert r["argv"] == ["a", "b"]


def test_reexec_falls_back_to_a_sealed_memfd_copy():
    before = ("from runtime.errors import SysError\n"
              "def refuse(*a, **k):\n    raise SysError('open_tree', 1, 'x')\n"
              "linux.open_tree = refuse")
    r = report(before)
    assert r["link"].startswith("/memfd:runtime-python")
    want = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
    assert r["seals"] & want == want
    assert r["writable"] in ("Text file busy", "Operation not permitted")


def test_already_sealed_is_not_reexecuted():
    # a second call in the re-executed process returns at once
    before = "import os\nos.environ[linux._SEALED_ENV] = '1'"
    r = report(before)
    assert r["link"] == os.path.realpath(sys.executable)


# -- the launcher against the Python entry point ----------------------------------------
PY_ENTRY = [sys.executable, "-I", "-c",
            f"import sys; sys.path.insert(0, {REPO!r}); from runtime.cli import main; main()"]


@pytest.mark.skipif(not os.path.exists(LAUNCHER) or open(LAUNCHER, "rb").read(4) != b"\x7fELF",
                    reason="the C launcher is what scripts/setup installs; not installed here")
@pytest.mark.parametrize("argv", [["--version"], ["list", "-q"], ["state", "nosuch"], ["nosuch"],
                                  ["create"], ["exec", "nosuch", "true"], ["features"]])
def test_launcher_and_python_entry_agree(tmp_path, argv):
    """The launcher only changes how the interpreter is executed: output, errors
    and exit codes are those of the Python entry point."""
    results = []
    for entry in ([LAUNCHER], PY_ENTRY):
        res = subprocess.run(entry + ["--root", str(tmp_path)] + argv, capture_output=True,
                             text=True, timeout=30, stdin=subprocess.DEVNULL)
        err = "\n".join(line.split(" level=", 1)[-1] for line in res.stderr.splitlines())
        results.append((res.returncode, res.stdout, err))
    assert results[0] == results[1]


@pytest.mark.parametrize("argv, view", [
    (["create", "c1"], True), (["run", "-d", "c1"], True), (["exec", "c1", "true"], True),
    (["--root", "/r", "--log=/l", "--debug", "exec", "c1"], True),
    (["--root", "exec", "state", "c1"], False),      # "exec" is --root's value here
    (["state", "c1"], False), (["delete", "-f", "c1"], False), ([], False),
])
def test_launcher_runs_the_interpreter_from_a_read_only_view(tmp_path, argv, view):
    """runtime/linux/launcher.c built around a script that reports its exe: the
    commands that enter a container run through the read-only view (the others by
    path: a detached mount costs its teardown at exit)."""
    script = tmp_path / "who.py"
    script.write_text("import os\nprint(os.readlink('/proc/self/exe'), "
                      "bool(os.statvfs('/proc/self/exe').f_flag & os.ST_RDONLY))\n")
    res = subprocess.run(["gcc", "-O2", f'-DPYTHON="{sys.executable}"', f'-DSCRIPT="{script}"',
                          "-o", str(tmp_path / "launcher"),
                          os.path.join(REPO, "runtime", "linux", "launcher.c")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out = subprocess.run([str(tmp_path / "launcher")] + argv, capture_output=True, text=True,
                         timeout=30).stdout
    assert out == ("/ True\n" if view else f"{os.path.realpath(sys.executable)} False\n")
