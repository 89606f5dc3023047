"""One function per CLI command: turn parsed flags into a lifecycle call and print
its result as runc does.  ``opts`` are the global flags, ``flags`` the command's."""

import os
import sys

from . import jsonfast
from .errors import Error, UsageError


def _out(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def _check_rootless(opts):
    if opts["rootless"] not in ("true", "false", "auto"):
        raise UsageError(f"invalid --rootless value {opts['rootless']!r}: want true, false or auto")


def _check_systemd(opts):
    if opts["systemd-cgroup"] and not os.path.exists("/run/systemd/system"):
        raise Error("systemd cgroup flag passed, but systemd support for managing cgroups "
                    "is not available")


def cmd_create(opts, flags, args):
    from . import container

    _check_rootless(opts)
    _check_systemd(opts)
    created = container.create(
        opts, args[0], flags["bundle"], pid_file=flags["pid-file"],
        console_socket=flags["console-socket"], no_pivot=flags["no-pivot"],
        no_new_keyring=flags["no-new-keyring"], preserve_fds=flags["preserve-fds"])
    created.container.close()


def cmd_start(opts, flags, args):
    from . import container

    container.start(opts, args[0])


def cmd_run(opts, flags, args):
    from . import container

    _check_rootless(opts)
    _check_systemd(opts)
    cid = args[0]
    detach = flags["detach"]
    supervisor = None
    if not detach:
        from .supervise import Supervisor

        # Signals from now on are the container's (queued until its program runs).
        supervisor = Supervisor()
    created = container.create(
        opts, cid, flags["bundle"], pid_file=flags["pid-file"],
        console_socket=flags["console-socket"], no_pivot=flags["no-pivot"],
        no_new_keyring=flags["no-new-keyring"], preserve_fds=flags["preserve-fds"],
        foreground=not detach)
    created.container.close()
    stop = supervisor.stop_requested() if supervisor else None
    if stop is not None:
        if flags["keep"]:
            container.kill(opts, cid, 9)  # kept, stopped, as after any exit
        else:
            _quiet_delete(container, opts, cid)
        return 128 + stop
    try:
        container.start(opts, cid)
    except Error:
        if not flags["keep"]:
            _quiet_delete(container, opts, cid)
        raise
    if detach:
        return 0
    supervisor.forward_to(created.pid)
    code = supervisor.wait(created.master_fd, no_subreaper=flags["no-subreaper"])
    if not flags["keep"]:
        _quiet_delete(container, opts, cid)
    return code


def _quiet_delete(container, opts, cid):
    try:
        container.delete(opts, cid, force=True)
    except Error as e:
        from .log import log

        log.warning(f"delete after run: {e}")


def cmd_state(opts, flags, args):
    from . import container

    _out(jsonfast.dumps(container.state(opts, args[0]), indent=True) + "\n")


def cmd_list(opts, flags, args):
    from . import container

    fmt = flags["format"]
    if fmt not in ("table", "json"):
        raise Error(f"invalid format option: {fmt!r}")
    states = container.list_states(opts)
    if flags["quiet"]:
        _out("".join(s["id"] + "\n" for s in states))
        return
    if fmt == "json":
        # runc prints Go's encoding of a nil slice when there is no container.
        _out((jsonfast.dumps(states) if states else "null") + "\n")
        return
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"])
             for s in states]
    # Go's tabwriter as runc configures it: minimum width 12, padding 3.
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(5)]
    _out("".join("".join(cell.ljust(w) for cell, w in zip(r, widths)) + r[5] + "\n"
                 for r in rows))


def cmd_kill(opts, flags, args):
    from . import container, signals

    sig = signals.parse(args[1] if len(args) > 1 else "SIGTERM")
    container.kill(opts, args[0], sig, flags["all"])


def cmd_delete(opts, flags, args):
    from . import container

    container.delete(opts, args[0], force=flags["force"])


def cmd_spec(opts, flags, args):
    from .specgen import default_spec

    bundle = flags["bundle"]
    if bundle:
        try:
            os.chdir(bundle)
        except OSError as e:
            raise Error(f"chdir {bundle}: {os.strerror(e.errno).lower()}") from None
    if os.path.exists("config.json"):
        raise Error("File config.json exists. Remove it first.")
    text = jsonfast.dumps(default_spec(rootless=flags["rootless"]), indent=True)
    fd = os.open("config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def cmd_features(opts, flags, args):
    from . import features

    _out(jsonfast.dumps(features.features(), indent=True) + "\n")


def cmd_help(opts, flags, args):
    from .cli import COMMANDS, usage

    if args and args[0] not in COMMANDS:
        raise UsageError(f"No help topic for '{args[0]}'")
    _out(usage(args[0] if args else None))


def cmd_exec(opts, flags, args):
    from . import execution

    return execution.execute(opts, args[0], flags, args[1:])


def cmd_pause(opts, flags, args):
    from . import control

    control.pause(opts, args[0])


def cmd_resume(opts, flags, args):
    from . import control

    control.resume(opts, args[0])


def cmd_ps(opts, flags, args):
    from . import control

    fmt = flags["format"]
    if fmt not in ("table", "json"):
        raise Error(f"invalid format option: {fmt!r}")
    pids = control.pids(opts, args[0])
    if fmt == "json":
        _out((jsonfast.dumps(pids) if pids else "null") + "\n")
        return
    import subprocess

    try:
        res = subprocess.run(["ps"] + (args[1:] or ["-ef"]), capture_output=True, text=True)
    except OSError as e:
        raise Error(f"exec ps: {os.strerror(e.errno).lower()}") from None
    if res.returncode != 0:
        raise Error(f"ps: {res.stderr.strip() or 'exit status ' + str(res.returncode)}")
    lines = res.stdout.splitlines()
    if not lines:
        return
    header = lines[0].split()
    if "PID" not in header:
        raise Error("couldn't find PID field in ps output")
    col = header.index("PID")
    wanted = {str(p) for p in pids}
    _out(lines[0] + "\n" + "".join(line + "\n" for line in lines[1:]
                                   if len(line.split()) > col and line.split()[col] in wanted))


def cmd_events(opts, flags, args):
    from . import control

    control.events(opts, args[0], flags["interval"], flags["stats"], _out)


def cmd_update(opts, flags, args):
    from . import control

    control.update(opts, args[0], flags)
