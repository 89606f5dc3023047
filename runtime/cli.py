"""The command line: runc's commands, flags, output and exit codes.

Parsing follows runc's (Go flag package) conventions: ``-flag`` and ``--flag``,
``--flag value`` and ``--flag=value``, boolean flags take no value.  Flags may
follow the container id except for ``exec``, whose arguments after the id are the
command.  Each command imports only what it needs: start-up is most of a command's
latency.
"""

import os
import sys

from . import __version__, OCI_VERSION
from .errors import Error, UsageError, describe

# name -> (aliases, takes a value (True, False, or MULTI: repeatable), default)
MULTI = "multi"

GLOBAL_FLAGS = {
    "root": (("root",), True, None),
    "log": (("log",), True, None),
    "log-format": (("log-format",), True, "text"),
    "debug": (("debug",), False, False),
    "systemd-cgroup": (("systemd-cgroup",), False, False),
    "rootless": (("rootless",), True, "auto"),
    "criu": (("criu",), True, "criu"),
    "help": (("help", "h"), False, False),
    "version": (("version", "v"), False, False),
}

_CREATE = {
    "bundle": (("bundle", "b"), True, ""),
    "console-socket": (("console-socket",), True, ""),
    "pid-file": (("pid-file",), True, ""),
    "no-pivot": (("no-pivot",), False, False),
    "no-new-keyring": (("no-new-keyring",), False, False),
    "preserve-fds": (("preserve-fds",), True, "0"),
}

# command -> (flags, min args, max args (None: any), usage, summary)
COMMANDS = {
    "create": (_CREATE, 1, 1, "<container-id>", "create a container"),
    "start": ({}, 1, 1, "<container-id>", "executes the user defined process in a created container"),
    "run": (dict(_CREATE, **{
        "detach": (("detach", "d"), False, False),
        "keep": (("keep",), False, False),
        "no-subreaper": (("no-subreaper",), False, False),
    }), 1, 1, "<container-id>", "create and run a container"),
    "state": ({}, 1, 1, "<container-id>", "output the state of a container"),
    "list": ({
        "format": (("format", "f"), True, "table"),
        "quiet": (("quiet", "q"), False, False),
    }, 0, 0, "", "lists containers started by runtime with the given root"),
    "kill": ({"all": (("all", "a"), False, False)}, 1, 2, "<container-id> [signal]",
             "kill sends the specified signal (default: SIGTERM) to the container's init process"),
    "delete": ({"force": (("force", "f"), False, False)}, 1, 1, "<container-id>",
               "delete any resources held by the container often used with detached container"),
    "spec": ({
        "bundle": (("bundle", "b"), True, ""),
        "rootless": (("rootless",), False, False),
    }, 0, 0, "", "create a new specification file"),
    "features": ({}, 0, 0, "", "show the enabled features"),
    "exec": ({
        "console-socket": (("console-socket",), True, ""),
        "cwd": (("cwd",), True, ""),
        "env": (("env", "e"), MULTI, None),
        "tty": (("tty", "t"), False, False),
        "user": (("user", "u"), True, ""),
        "additional-gids": (("additional-gids", "g"), MULTI, None),
        "process": (("process", "p"), True, ""),
        "detach": (("detach", "d"), False, False),
        "pid-file": (("pid-file",), True, ""),
        "process-label": (("process-label",), True, ""),
        "apparmor": (("apparmor",), True, ""),
        "no-new-privs": (("no-new-privs",), False, False),
        "cap": (("cap", "c"), MULTI, None),
        "preserve-fds": (("preserve-fds",), True, "0"),
        "cgroup": (("cgroup",), MULTI, None),
        "ignore-paused": (("ignore-paused",), False, False),
    }, 1, None, "<container-id> <command> [command options]  ||  -p process.json <container-id>",
        "execute new process inside the container"),
    "pause": ({}, 1, 1, "<container-id>", "pause suspends all processes inside the container"),
    "resume": ({}, 1, 1, "<container-id>",
               "resumes all processes that have been previously paused"),
    "ps": ({"format": (("format", "f"), True, "table")}, 1, None, "<container-id> [ps options]",
           "ps displays the processes running inside a container"),
    "events": ({
        "interval": (("interval",), True, "5s"),
        "stats": (("stats",), False, False),
    }, 1, 1, "<container-id>",
        "display container events such as OOM notifications, cpu, memory, and IO usage statistics"),
    "update": ({
        "resources": (("resources", "r"), True, ""),
        "blkio-weight": (("blkio-weight",), True, None),
        "cpu-period": (("cpu-period",), True, None),
        "cpu-quota": (("cpu-quota",), True, None),
        "cpu-share": (("cpu-share",), True, None),
        "cpu-rt-period": (("cpu-rt-period",), True, None),
        "cpu-rt-runtime": (("cpu-rt-runtime",), True, None),
        "cpuset-cpus": (("cpuset-cpus",), True, None),
        "cpuset-mems": (("cpuset-mems",), True, None),
        "memory": (("memory",), True, None),
        "memory-reservation": (("memory-reservation",), True, None),
        "memory-swap": (("memory-swap",), True, None),
        "pids-limit": (("pids-limit",), True, None),
        "l3-cache-schema": (("l3-cache-schema",), True, None),
        "mem-bw-schema": (("mem-bw-schema",), True, None),
    }, 1, 1, "<container-id>", "update container resource constraints"),
    "help": ({}, 0, 1, "[command]", "Shows a list of commands or help for one command"),
}

_BOOL_VALUES = {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}


def parse_flags(spec, argv, interspersed=True):
    """Parse ``argv`` against ``spec``; return (values, positional args)."""
    by_alias = {a: name for name, (aliases, _, _) in spec.items() for a in aliases}
    values = {name: default for name, (_, _, default) in spec.items()}
    args = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            args.extend(argv[i:])
            break
        if len(arg) < 2 or arg[0] != "-" or (args and not interspersed):
            args.append(arg)
            if not interspersed:
                args.extend(argv[i:])
                break
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        key = by_alias.get(name)
        if key is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        takes_value = spec[key][1]
        if takes_value:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            if takes_value == MULTI:
                values[key] = (values[key] or []) + [value]
            else:
                values[key] = value
        elif eq:
            if value.lower() not in _BOOL_VALUES:
                raise UsageError(f'invalid boolean value "{value}" for -{name}')
            values[key] = _BOOL_VALUES[value.lower()]
        else:
            values[key] = True
    return values, args


def version_text():
    return f"runtime version {__version__}\nspec: {OCI_VERSION}\npython: {sys.version.split()[0]}\n"


def usage(cmd=None):
    if cmd is None:
        lines = ["NAME:", "   runtime - Open Container Initiative runtime", "",
                 "USAGE:", "   runtime [global options] command [command options] [arguments...]",
                 "", "COMMANDS:"]
        for name, (_, _, _, _, summary) in COMMANDS.items():
            lines.append(f"   {name:<11} {summary}")
        lines += ["", "GLOBAL OPTIONS:",
                  "   --debug             enable debug logging",
                  "   --log value         set the log file to write runtime logs to (default is '/dev/stderr')",
                  "   --log-format value  set the log format ('text' (default), or 'json') (default: \"text\")",
                  "   --root value        root directory for storage of container state (this should be located in tmpfs) (default: \"/run/runtime\")",
                  "   --systemd-cgroup    enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runtime:434234\"",
                  "   --rootless value    ignore cgroup permission errors ('true', 'false', or 'auto') (default: \"auto\")",
                  "   --help, -h          show help",
                  "   --version, -v       print the version"]
        return "\n".join(lines) + "\n"
    flags, _, _, args, summary = COMMANDS[cmd]
    lines = ["NAME:", f"   runtime {cmd} - {summary}", "", "USAGE:",
             f"   runtime {cmd} [command options] {args}".rstrip()]
    if flags:
        lines += ["", "OPTIONS:"]
        for name, (aliases, takes, default) in flags.items():
            names = ", ".join(("--" if len(a) > 1 else "-") + a + (" value" if takes else "")
                              for a in aliases)
            lines.append(f"   {names}")
    return "\n".join(lines) + "\n"


#: runc's commands this runtime does not implement, and why: a clear error rather
#: than runc's "No help topic" for a command it does not know
UNSUPPORTED = {
    "checkpoint": "no CRIU integration",
    "restore": "no CRIU integration",
}


def main(argv=None):
    """The ``runtime`` program.  Run as the program (no ``argv``) it leaves with
    os._exit once its output is flushed: interpreter teardown is pure cost here
    (a few ms per command), with every fd closed by the kernel anyway."""
    if argv is not None:
        return run(argv)
    code = run(sys.argv[1:], program=True)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(code)


#: the commands whose processes enter a container's namespaces
ENTERING = ("create", "run", "exec")


def run(argv, program=False):
    from .log import configure, log

    try:
        opts, rest = parse_flags(GLOBAL_FLAGS, argv, interspersed=False)
        if opts["log-format"] not in ("text", "json"):
            raise UsageError(f"invalid log-format: {opts['log-format']}")
        configure(opts["log"], opts["log-format"], opts["debug"])
    except UsageError as e:
        sys.stderr.write(f"{e}\n\n{usage()}")
        return 1

    if opts["version"]:
        sys.stdout.write(version_text())
        return 0
    if opts["help"] or not rest:
        sys.stdout.write(usage())
        return 0
    cmd, argv = rest[0], rest[1:]
    if cmd == "h":
        cmd = "help"
    if cmd in UNSUPPORTED:
        log.error(f"{cmd} is not supported by this runtime: {UNSUPPORTED[cmd]}")
        return 1
    if cmd not in COMMANDS:
        log.error(f"No help topic for '{cmd}'")
        return 3
    flags, lo, hi, _, _ = COMMANDS[cmd]
    try:
        if "-h" in argv[:1] or "--help" in argv[:1]:
            sys.stdout.write(usage(cmd))
            return 0
        values, args = parse_flags(flags, argv, interspersed=cmd not in ("exec", "ps"))
        if program and cmd in ENTERING:
            from . import linux

            linux.reexec_sealed(sys.orig_argv)
        if len(args) < lo or (hi is not None and len(args) > hi):
            if lo == hi:
                want = f"exactly {lo}"
            elif hi is None:
                want = f"at least {lo}"
            else:
                want = f"between {lo} and {hi}"
            raise UsageError(f'runtime: "{cmd}" requires {want} argument(s)')
        from . import commands

        return getattr(commands, "cmd_" + cmd.replace("-", "_"))(opts, values, args) or 0
    except UsageError as e:
        log.error(str(e))
        return 1
    except Error as e:
        log.error(str(e))
        return e.exit_code
    except OSError as e:
        # An OSError that no layer wrapped: say what and where anyway.
        log.error(describe(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a bug: still one line, traceback with --debug
        if opts.get("debug"):
            import traceback

            traceback.print_exc()
        log.error(describe(e))
        return 1
