"""Lifecycle hooks (config.md "POSIX-platform Hooks").

A hook gets the container state JSON on stdin, its ``args`` as argv (``path`` is
what runs) and exactly its ``env``; ``timeout`` seconds, if given, bound it.  What
a failure means is the caller's business: create-time hooks abort the create,
poststop failures are only warnings.
"""

import os
import select
import _signal as signal
from time import monotonic as _now

from . import jsonfast
from .errors import HookError

_OUTPUT_LIMIT = 4096


def run_all(kind, hooks, state):
    """Run the ``kind`` hooks in order; raise HookError on the first failure."""
    if not hooks:
        return
    data = jsonfast.dumps(state).encode()
    for i, hook in enumerate(hooks):
        run(kind, i, hook, data)


def run(kind, index, hook, state_bytes):
    path = hook["path"]
    argv = hook.get("args") or [path]
    env = {}
    for item in hook.get("env") or ():
        key, _, value = item.partition("=")
        env[key] = value
    timeout = hook.get("timeout")
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.posix_spawn(path, argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin_r, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ], setsigdef=(signal.SIGPIPE,), setpgroup=0)
    except OSError as e:
        for fd in (stdin_r, stdin_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        raise HookError(f"error running {kind} hook #{index}: {path}: "
                        f"{os.strerror(e.errno).lower()}") from None
    os.close(stdin_r)
    os.close(out_w)
    os.close(err_w)
    try:
        os.write(stdin_w, state_bytes)
    except OSError:
        pass  # a hook need not read its stdin
    os.close(stdin_w)
    output = {out_r: b"", err_r: b""}
    pidfd = os.pidfd_open(pid)
    deadline = None if not timeout else _now() + timeout
    poller = select.poll()
    for fd in (out_r, err_r, pidfd):
        poller.register(fd, select.POLLIN)
    open_fds = {out_r, err_r}
    exited = False
    timed_out = False
    try:
        while open_fds or not exited:
            wait_ms = None if deadline is None else max(0, int((deadline - _now()) * 1000))
            events = poller.poll(wait_ms)
            if deadline is not None and _now() >= deadline:
                if exited:
                    break
                timed_out = True
                # The hook and whatever it started: it runs in a group of its own.
                os.killpg(pid, signal.SIGKILL)
                break
            for fd, _ in events:
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                    # Whatever it left running may hold its stdout: read what is
                    # there, not until EOF.
                    drain = _now() + 0.1
                    deadline = drain if deadline is None else min(deadline, drain)
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    output[fd] = (output[fd] + chunk)[-_OUTPUT_LIMIT:]
                else:
                    poller.unregister(fd)
                    open_fds.discard(fd)
    finally:
        _, status = os.waitpid(pid, 0)
        for fd in (out_r, err_r, pidfd):
            os.close(fd)
    if timed_out:
        raise HookError(f"error running {kind} hook #{index}: {path}: timed out after {timeout}s")
    if status != 0:
        if os.WIFSIGNALED(status):
            why = f"killed by signal {os.WTERMSIG(status)}"
        else:
            why = f"exit status {os.waitstatus_to_exitcode(status)}"
        out = output[out_r].decode(errors="replace").strip().replace("\n", " ")
        err = output[err_r].decode(errors="replace").strip().replace("\n", " ")
        raise HookError(f"error running {kind} hook #{index}: {why}, stdout: {out}, stderr: {err}")

