"""``runtime exec``: a new process inside a running container.

The sequence mirrors create's (protocol.py) with the container's existing
namespaces and cgroup instead of new ones:

 parent (runtime exec)               | stage-1                    | process
 ------------------------------------+----------------------------+--------------------------------
 under the container's lock: pidfd of|                            |
 the init, checked; its /proc/<pid>/ |                            |
 ns/* opened; lock released (a paused|                            |
 container: the process waits frozen |                            |
 until resume); seccomp filter       |                            |
 prepared; fork; execCPUAffinity     | not dumpable; closes other |
 initial; join the cgroup            | fds                        |
 -> "go"                             | setns (namespaces.join_    |
                                     | order)                     |
                                     | <- "pid" {pid}; exit       |
 -> "init"                           |                            | (console) cwd, personality,
                                     |                            | memory policy, rlimits, final
                                     |                            | affinity; user, caps, nnp
 seccomp fd to the listener          |                            | <- "seccomp" [fd] (NOTIFY only)
                                     |                            | <- "ready"
 -> "run"; EOF on the channel        |                            | exec the sealed helper with -w
 EOF on the report pipe: the program |                            | (report pipe), which loads the
 runs; --detach: pid file, exit;     |                            | filter and execs: "E<errno>"/
 else wait and return its exit code  |                            | "S<errno>" if that fails
"""

import os

from . import console, jsonfast, linux, namespaces, process, protocol, sched
from . import state as st
from .errors import Error, StateError, SysError
from .log import log



def build_process(config, flags, args):
    """The process JSON: ``--process FILE`` as is, else the container's process with
    the command line's overrides (runc's rules)."""
    if flags.get("process"):
        try:
            with open(flags["process"], "rb") as f:
                proc = jsonfast.loads(f.read())
        except OSError as e:
            raise SysError("open process file", e.errno, flags["process"]) from None
        except ValueError as e:
            raise Error(f"{flags['process']}: invalid JSON: {e}") from None
        if not isinstance(proc, dict):
            raise Error(f"{flags['process']}: not a JSON object")
    else:
        proc = jsonfast.loads(jsonfast.dumps(config.get("process") or {}))
        proc["args"] = list(args)
        if flags.get("cwd"):
            proc["cwd"] = flags["cwd"]
        if flags.get("apparmor"):
            proc["apparmorProfile"] = flags["apparmor"]
        if flags.get("process-label"):
            proc["selinuxLabel"] = flags["process-label"]
        caps = flags.get("cap") or []
        if caps:
            c = proc.setdefault("capabilities", {})
            for s in ("bounding", "effective", "permitted", "ambient"):
                c[s] = list(c.get(s) or ()) + caps
        proc["env"] = list(proc.get("env") or ()) + list(flags.get("env") or ())
        proc["terminal"] = bool(flags.get("tty"))
        if flags.get("no-new-privs"):
            proc["noNewPrivileges"] = True
        user = proc.setdefault("user", {})
        if flags.get("user"):
            uid, _, gid = flags["user"].partition(":")
            try:
                user["uid"] = int(uid)
                if gid:
                    user["gid"] = int(gid)
            except ValueError:
                raise Error(f"invalid --user {flags['user']!r}: want <uid>[:<gid>]") from None
        for g in flags.get("additional-gids") or ():
            try:
                gid = int(g)
            except ValueError:
                raise Error(f"invalid --additional-gids {g!r}") from None
            if gid < 0:
                raise Error(f"additional-gids must be a positive number {gid}")
            user.setdefault("additionalGids", []).append(gid)
    if not proc.get("args"):
        raise Error("args must not be empty")
    cwd = proc.get("cwd") or "/"
    if not cwd.startswith("/"):
        raise Error("cwd must be an absolute path")
    proc["cwd"] = cwd
    return proc


class _Job:
    def __init__(self, proc, seccomp_filter, ns_fds, helper_fd, report_w, console_fd, preserve):
        self.proc = proc
        self.seccomp = seccomp_filter
        self.ns_fds = ns_fds
        self.helper_fd = helper_fd
        self.report_w = report_w
        self.console_fd = console_fd
        self.clear_onlcr = False
        self.linux = {}
        self.preserve_fds = preserve

    def fds(self):
        own = [self.helper_fd, self.report_w, self.console_fd]
        return [fd for fd in own if fd is not None] + list(self.ns_fds.values())


def execute(opts, cid, flags, args):
    """Run the exec; returns the exit code (or 0 once detached)."""
    from .container import _cgroup_of, check_lsm, store, write_pid_file

    detach = flags.get("detach")
    supervisor = None
    if not detach:
        from .supervise import Supervisor

        supervisor = Supervisor()
    fds = []
    # Under the container's lock: what the exec needs of it, the init checked alive
    # through a pidfd and its namespaces opened.  Not across the spawn: in a paused
    # container (--ignore-paused) the new process waits in the frozen cgroup until
    # `resume`, which takes the same lock.
    with store(opts).open(cid) as c:
        cgroup = _cgroup_of(c)
        status = c.status(cgroup, locked=True)
        if status == st.STOPPED:
            raise StateError("cannot exec in a stopped container")
        if status == st.PAUSED and not flags.get("ignore-paused"):
            raise StateError("cannot exec in a paused container (use --ignore-paused to override)")
        if status not in (st.CREATED, st.RUNNING, st.PAUSED):
            raise StateError(f"cannot exec in a container in status {status}")
        config = c.config()
        proc = build_process(config, flags, args)
        check_lsm(proc)
        terminal = bool(proc.get("terminal"))
        if terminal and detach and not flags.get("console-socket"):
            raise Error("cannot allocate tty if runtime will detach without setting console socket")
        if flags.get("console-socket") and not terminal:
            raise Error("cannot use console socket if runtime will not detach or allocate tty")
        lin = config.get("linux") or {}
        init_pid = c.pid
        fds.append(os.pidfd_open(init_pid))
        try:
            if not c.alive():
                raise StateError("container not running")
            ns_fds = _open_namespaces(init_pid, lin)
        except BaseException:
            os.close(fds.pop())
            raise
        fds += ns_fds.values()
        listener = (lin.get("seccomp") or {}).get("listenerPath")
        oci_state = c.oci_state(status) if listener else None
    try:
        seccomp_filter = None
        if lin.get("seccomp"):
            from . import seccomp

            seccomp_filter = seccomp.prepare(lin["seccomp"], seccomp.cache_dir())
        helper_fd = linux.memfd_exec_helper()
        fds.append(helper_fd)
        report_r, report_w = os.pipe()
        fds += [report_r, report_w]
        console_fd = local_console = None
        if terminal:
            if flags.get("console-socket"):
                console_fd = console.connect(flags["console-socket"])
            else:
                local_console, console_fd = protocol.socketpair()
                fds.append(local_console)
            fds.append(console_fd)
        try:
            preserve = int(flags.get("preserve-fds") or 0)
        except ValueError:
            raise Error(f"invalid value {flags['preserve-fds']!r} for flag --preserve-fds") from None
        job = _Job(proc, seccomp_filter, ns_fds, helper_fd, report_w, console_fd, preserve)
        job.clear_onlcr = local_console is not None and not os.isatty(1)
        job.linux = lin
        cgroup_dirs = _cgroup_dirs(cgroup, flags.get("cgroup"))

        def on_seccomp(fd, pid):
            from . import seccomp

            try:
                seccomp.send_notify_fd(listener, fd, oci_state,
                                       lin["seccomp"].get("listenerMetadata", ""), pid=pid)
            finally:
                os.close(fd)

        pid = _spawn(job, cgroup_dirs, proc, on_seccomp)
        os.close(report_w)
        fds.remove(report_w)
        master = console.recv_fd(local_console) if local_console is not None else None
        _confirm_exec(report_r, pid, proc)
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
    if flags.get("pid-file"):
        write_pid_file(flags["pid-file"], pid)
    if detach:
        return 0
    supervisor.forward_to(pid)
    return supervisor.wait(master)


def _open_namespaces(init_pid, lin):
    fds = {}
    try:
        for ns in lin.get("namespaces") or ():
            kind = ns["type"]
            path = f"/proc/{init_pid}/ns/{namespaces.TYPES[kind][1]}"
            try:
                fds[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise SysError("open namespace", e.errno, path) from None
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def _cgroup_dirs(cgroup, sub):
    """cgroup.procs files to join: the container's, or ``--cgroup [ctrl:]path``."""
    if cgroup is None:
        return []
    paths = dict(cgroup.paths())
    if sub:
        for item in sub.split(","):
            ctrl, sep, rel = item.rpartition(":")
            targets = [ctrl] if sep and ctrl else list(paths)
            for t in targets:
                if t not in paths:
                    raise Error(f"--cgroup: unknown controller {t!r}")
                d = os.path.join(paths[t], rel.lstrip("/"))
                if not os.path.isdir(d):
                    raise Error(f"--cgroup: {d} does not exist")
                paths[t] = d
    return sorted(set(paths.values()))


def _spawn(job, cgroup_dirs, proc, on_seccomp):
    """The process, up to its exec of the helper; returns its pid.  ``on_seccomp(fd,
    pid)`` hands a seccomp listener fd to the agent."""
    mine, theirs = protocol.socketpair()
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1, what="become subreaper")
    pid = os.fork()
    if pid == 0:
        os.close(mine)
        protocol.run_child(_stage1, job, theirs)
    os.close(theirs)
    chan = protocol.Channel(mine, log.write)
    final = 0
    try:
        initial = (proc.get("execCPUAffinity") or {}).get("initial")
        if initial:
            # before the cgroup (spec: initial, then final once it is in the cgroup)
            os.sched_setaffinity(pid, sched.parse_cpus(initial, "process.execCPUAffinity.initial"))
        for d in cgroup_dirs:
            linux.write_file(os.path.join(d, "cgroup.procs"), pid, "join cgroup")
        chan.send("go")
        final = chan.recv("pid")["pid"]
        chan.send("init")
        if proc.get("oomScoreAdj") is not None:
            linux.write_file(f"/proc/{final}/oom_score_adj", proc["oomScoreAdj"],
                             "write oom_score_adj")
        os.waitpid(pid, 0)
        pid = 0
        chan.recv_ready(lambda fd: on_seccomp(fd, final))
        chan.send("run")
        # its end closes when it execs the helper; an error after the filter
        # (a profile that denies what Python still calls) arrives instead
        chan.wait_closed()
        return final
    except EOFError:
        raise Error("exec: the process exited during setup") from None
    except BaseException:
        process.kill_and_reap(pid, final)
        raise
    finally:
        chan.close()


def _stage1(job, chan):
    chan.recv("go")
    for kind in namespaces.join_order(job.ns_fds):
        linux.setns(job.ns_fds[kind], namespaces.TYPES[kind][0], f"{kind} namespace of the container")
    protocol.fork_next(_process, job, chan)


def _process(job, chan):
    proc = job.proc
    if proc.get("terminal"):
        os.setsid()
        console.setup_in_container(job.console_fd, proc.get("consoleSize"), job.clear_onlcr)
    env = process.environment(proc.get("env"))
    cwd = proc.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise Error(f"chdir to cwd ({cwd!r}): {os.strerror(e.errno).lower()}") from None
    # A cwd reached through a leaked fd would be outside the container's root
    # (CVE-2024-21626); the kernel then reports it unreachable.
    if not os.getcwd().startswith("/"):
        raise Error(f"cwd {cwd!r} is outside the container's root: refusing to run there")
    process.apply_attributes(job.linux, proc)
    user = proc.get("user") or {}
    if "HOME" not in env:
        env["HOME"] = process.home_of(user.get("uid", 0))
    path = process.find_executable(proc["args"][0], env)
    if user.get("umask") is not None:
        os.umask(user["umask"])
    # before the filter: see protocol._init
    process.prepare_fds(3 + job.preserve_fds, keep=(job.report_w,))
    label = process.exec_label(proc)
    helper_filter = process.finish(proc, job.seccomp, chan)
    chan.send("ready")
    chan.recv("run")
    process.exec_helper(job.helper_fd, path, proc["args"], env, report_fd=job.report_w,
                        label=label, seccomp=helper_filter)


def _confirm_exec(report_r, pid, proc):
    """EOF on the report pipe: the program is running; else why it is not."""
    data = b""
    while True:
        chunk = os.read(report_r, 4096)
        if not chunk:
            break
        data += chunk
    if data:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        raise process.helper_failure(data, proc["args"][0])

