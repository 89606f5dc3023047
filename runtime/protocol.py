"""The parent/child protocol of ``create``: who does what, in which order.

Three processes take part.  The parent is ``runtime create`` (or ``run``), a
child subreaper for the duration.  Stage-1 is its fork: it enters the
namespaces.  The init is stage-1's fork: pid 1 of a new pid namespace, it builds
the container and finally becomes the user's program.  When stage-1 exits, the
init is reparented to the parent, and to the parent's own subreaper (the shim,
conmon) once the parent exits.  They talk over a SOCK_SEQPACKET socketpair, one
JSON object per packet, fds attached with SCM_RIGHTS.

 step | parent                          | stage-1                        | init
 -----+---------------------------------+--------------------------------+------------------------------
   1  | fork stage-1; make the cgroup   |                                |
      | (stage-1 joins it now if the    |                                |
      | container has a new cgroup ns)  |                                |
   2  | -> "go" {cgroup paths}          | join the ns the user ns to join|
      |                                 | does not own, then it (become  |
      |                                 | its root); or join every ns to |
      |                                 | join, unshare a new user ns and|
   3  | write uid_map/gid_map           | <- "userns"  (new userns only) |
   4  | -> "maps"                       | become root in it; join the    |
      |                                 | other ns; unshare the new ones;|
      |                                 | write timens offsets; fork     |
   5  | record pid, state "creating"    | <- "pid" {pid}; exit           |
      | -> "init"; the init joins the   |                                | setsid; loopback up; mounts,
      | cgroup (unless stage-1 did)     |                                | devices, hostname (rootfs.py)
   6  | run prestart + createRuntime    |                                | <- "hooks"
      | hooks (runtime namespace)       |                                |
   7  | -> "hooks-done" {state}         |                                | createContainer hooks;
      |                                 |                                | pivot_root; console (master
      |                                 |                                | sent on --console-socket);
      |                                 |                                | sysctl, masked and readonly
      |                                 |                                | paths, deferred read-only
      |                                 |                                | mounts; rlimits; fds marked
      |                                 |                                | close-on-exec; user, caps,
      |                                 |                                | no_new_privs (seccomp: below)
 7b   | send the fd to the listener     |                                | <- "seccomp" [fd] (SCMP_ACT_
      | (listenerPath) at once          |                                | NOTIFY: loaded here, sent at
      |                                 |                                | once, before any notified call)
   8  | cgroup set(resources)           |                                | <- "ready"
   9  | -> "run"; wait for EOF (the     |                                | exec the sealed helper (its
      | init's end closes at the exec), |                                | end closes), which blocks
      | "error", or its death: then the |                                | opening exec.fifo
      | create fails; state "created";  |                                |
      | pid file; exit (or wait: run)   |                                |
  10  | `runtime start` opens the fifo  |                                | (startContainer hooks, if any,
      | for reading; EOF = exec'd,      |                                | run here, in Python, before
      | "E<errno>"/"S<errno>"/"H<msg>"  |                                | the helper); the helper loads
      | = failed                        |                                | the seccomp filter (with
      |                                 |                                | no_new_privs) and execs the
      |                                 |                                | program
 -----+---------------------------------+--------------------------------+------------------------------
 Any child failure sends "error" {msg} and exits; the parent then kills what it
 started and undoes the create.  "log" {level, msg} may come at any time; the
 parent logs it.  If the parent dies, the children read EOF at their next receive and exit.

The seccomp filter: with no_new_privs and no listener, the helper loads it as its
very last step, so only the program's execve follows it and a profile that denies
what the runtime calls cannot break the container.  Without no_new_privs it is
loaded before the privileges are dropped (it needs CAP_SYS_ADMIN then, as in runc).

The exec fifo and the sealed helper memfd are opened by the parent before the
fork and inherited; no other fd of the runtime reaches the user's program
(``process.prepare_fds``).  Everything the init needs is imported before it
forks: after pivot_root the host's Python library is out of reach.
"""

import _signal
import _socket
import os
import struct
import time

from . import console, devices, hooks, jsonfast, linux, namespaces, process, rootfs
from .errors import Error, HookError, describe

#: bytes of one packet; a longer message (a state with large annotations) goes as
#: "+"-prefixed pieces before its last one, which carries the fds
_PACKET = 32768


class Channel:
    """One end of the socketpair."""

    def __init__(self, fd, log=None):
        self.sock = _socket.socket(fileno=fd)
        self.log_cb = log

    def fileno(self):
        return self.sock.fileno()

    def send(self, kind, fds=(), **fields):
        fields["type"] = kind
        data = memoryview(jsonfast.dumps(fields).encode())
        # views, not copies: slicing the bytes made a large message quadratic
        off = 0
        while len(data) - off > _PACKET:
            self.sock.sendmsg([b"+", data[off:off + _PACKET]])
            off += _PACKET
        anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else []
        self.sock.sendmsg([data[off:]], anc)

    def recv(self, expect):
        """The next message, which must be of kind ``expect`` (or one of the kinds
        of a tuple); "log" messages are passed to the callback on the way, "error"
        ones raised."""
        while True:
            pieces = []
            while True:
                data, anc, _, _ = self.sock.recvmsg(_PACKET + 1, _socket.CMSG_SPACE(4 * 4))
                if not data:
                    raise EOFError
                if data[:1] != b"+":
                    break
                pieces.append(data[1:])
            msg = jsonfast.loads(b"".join(pieces) + data if pieces else data)
            fds = []
            for level, kind, payload in anc:
                if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                    fds += struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) // 4 * 4])
            msg["fds"] = fds
            if msg["type"] == "log":
                if self.log_cb:
                    self.log_cb(msg["level"], msg["msg"])
                continue
            if msg["type"] == "error":
                raise (HookError if msg.get("hook") else Error)(msg["msg"])
            if msg["type"] not in (expect if type(expect) is tuple else (expect,)):
                raise Error(f"container init: protocol error: expected {expect}, got {msg['type']}")
            return msg

    def recv_ready(self, on_seccomp):
        """Step 8's "ready", after the seccomp listener fd if the child sends one:
        ``on_seccomp(fd)`` hands it to the agent at once (create and exec alike)."""
        msg = self.recv(("seccomp", "ready"))
        if msg["type"] == "seccomp":
            on_seccomp(msg["fds"][0])
            self.recv("ready")

    def wait_closed(self):
        """Until the other end is closed (the child exec'd: its end is close-on-exec),
        raising the error it reports instead, if any."""
        try:
            self.recv("closed")     # never sent: any message is an error
        except EOFError:
            pass

    def log(self, level, text):
        try:
            self.send("log", level=level, msg=text)
        except OSError:
            pass

    def warn(self, text):
        self.log("warning", text)

    def debug(self, text):
        self.log("debug", text)

    def close(self):
        self.sock.close()


def socketpair():
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    return a.detach(), b.detach()


class Job:
    """Everything the children need, prepared by the parent before the fork (the
    fork copies it): the validated config and the resources opened for it."""

    def __init__(self, cid, bundle, config):
        self.id = cid
        self.bundle = bundle
        self.config = config
        self.linux = config.get("linux") or {}
        self.process = config.get("process")
        self.plan = namespaces.Plan(config)
        self.fifo_fd = None          # O_PATH fd of exec.fifo
        self.helper_fd = None        # sealed memfd of the exec helper
        self.console_fd = None       # connected console socket
        self.clear_onlcr = False     # the runtime proxies the pty to a non-terminal
        self.preserve_fds = 0
        self.no_pivot = False
        self.no_new_keyring = False
        self.cgroup_paths = {}
        self.seccomp = None          # a prepared seccomp.Filter
        self.idmap_fds = {}          # mounts index -> detached idmapped mount fd
        self.trace = False           # --debug: time each step (see mark())

    def fds(self):
        """The fds the children need; every other fd of the runtime is closed."""
        own = [self.fifo_fd, self.helper_fd, self.console_fd]
        return [fd for fd in own if fd is not None] + list(self.plan.fds.values()) + \
            list(self.idmap_fds.values())


def _death(status):
    if status and os.WIFSIGNALED(status):
        return f"container init was killed by signal {os.WTERMSIG(status)}"
    if status and os.WIFEXITED(status):
        return f"container init exited unexpectedly (exit status {os.WEXITSTATUS(status)})"
    return "container init exited unexpectedly"


def mark(log, who, what):
    """With --debug, a timestamped step (CLOCK_MONOTONIC, ms): the lines of the
    runtime and of its children line up into a profile of one create."""
    log.debug(f"{time.monotonic() * 1000:.3f} {who}: {what}")


# -- parent -------------------------------------------------------------------------
def cgroup_resources(lin, rootless=False):
    """linux.resources as the cgroup gets it.  Devices, as runc: from "deny all",
    the config's rules (none: nothing more is allowed), then an allow rule for each
    linux.devices node, then runc's default allow list (null, zero, full, tty,
    random, urandom, ptmx, pts, tun).  A rootless container whose config has no
    device rules gets none (as runc: it may have no devices cgroup to write)."""
    from . import cgroups

    resources = dict(lin.get("resources") or {})
    if rootless and not resources.get("devices"):
        return resources
    rules = [{"allow": False, "access": "rwm"}] + list(resources.get("devices") or ())
    for dev in lin.get("devices") or ():
        if dev["type"] in ("c", "b", "u"):
            rules.append({"allow": True, "type": "c" if dev["type"] == "u" else dev["type"],
                          "major": dev["major"], "minor": dev["minor"], "access": "rwm"})
    resources["devices"] = rules + cgroups.default_device_rules()
    return resources

class Parent:
    """Drives the create sequence from the runtime's side (steps 1 to 9)."""

    def __init__(self, job, cgroup, log):
        self.job = job
        self.cgroup = cgroup
        self.log = log
        self.stage1 = 0
        self.init_pid = 0
        self.chan = None

    def start(self, on_cgroup, on_pid, on_hooks, on_seccomp):
        """Run steps 1-8; ``on_cgroup()`` records the cgroups made, ``on_pid(pid)``
        the init, ``on_hooks(pid)`` runs the runtime-namespace hooks and returns the
        state for the container's hooks, ``on_seccomp(fd)`` hands the seccomp
        listener fd to the agent (and closes it)."""
        job = self.job
        mine, theirs = socketpair()
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1, what="become subreaper")
        pid = os.fork()
        if pid == 0:
            os.close(mine)
            run_child(_stage1, job, theirs)
        os.close(theirs)
        self.stage1 = pid
        self.chan = chan = Channel(mine, self.log.write)
        mark(self.log, "runtime", "forked stage-1")
        # Moving a process into a cgroup is slow (on v1 the first move waits for an
        # RCU grace period, ~15 ms here: bench/PROFILE.md).  Where nothing depends
        # on it, the init is moved while it builds its mounts: before it runs
        # anything it waits for "hooks-done".  A new cgroup
        # namespace is rooted where stage-1 stands when it unshares, a rootless
        # apply() may join fewer controllers than planned, and systemd starts a unit
        # only with a process in it: then stage-1 goes in first.
        cgroup = self.cgroup
        early = cgroup is not None and ("cgroup" in job.plan.new or cgroup.rootless
                                        or cgroup.apply_early)
        try:
            if cgroup is not None:
                # a process moved into a frozen cgroup stops there for good (D state)
                if cgroup.frozen():
                    raise Error("container's cgroup unexpectedly frozen")
                cgroup.apply(pid if early else None)
                on_cgroup()
                mark(self.log, "runtime", "cgroup made")
            chan.send("go", cgroup_paths=cgroup.paths() if cgroup is not None else {})
            if job.plan.new_user:
                chan.recv("userns")
                namespaces.write_id_maps(pid, job.linux.get("uidMappings"),
                                         job.linux.get("gidMappings"))
                chan.send("maps")
            self.init_pid = chan.recv("pid")["pid"]
            self._reap_stage1()
            chan.send("init")
            if cgroup is not None and not early:
                cgroup.join(self.init_pid)
                mark(self.log, "runtime", "init joined its cgroup")
            on_pid(self.init_pid)
            chan.recv("hooks")
            mark(self.log, "runtime", "init ready for hooks")
            state = on_hooks(self.init_pid)
            chan.send("hooks-done", state=state)
            chan.recv_ready(on_seccomp)
            mark(self.log, "runtime", "init ready to exec")
            # Limits bite from here, on the container's own processes, not on the
            # setup (as runc does): a pids.limit of 0 or a tight memory limit must
            # not make the init's work fail.
            resources = cgroup_resources(job.linux, self.cgroup is not None and self.cgroup.rootless)
            if self.cgroup is not None and resources:
                self.cgroup.set(resources)
                for w in self.cgroup.warnings:
                    self.log.warning(w)
                mark(self.log, "runtime", "resources set")
        except EOFError:
            raise Error(self._death_reason()) from None

    def release(self):
        """Step 9: let the init exec the helper, and see that it did: its end of the
        channel closes at the exec (or it reports an error, or it died: then the
        create fails, never leaving a container that cannot start)."""
        self.chan.send("run")
        self.chan.wait_closed()
        self.chan.close()
        self.chan = None
        pid, status = os.waitpid(self.init_pid, os.WNOHANG)
        if pid:
            self.init_pid = 0
            raise Error(_death(status))

    def _reap_stage1(self):
        _, status = os.waitpid(self.stage1, 0)
        self.stage1 = 0
        if status != 0:
            raise Error("container init: namespace setup process failed")

    def _death_reason(self):
        pid = self.init_pid or self.stage1
        try:
            _, status = os.waitpid(pid, os.WNOHANG) if pid else (0, 0)
        except ChildProcessError:
            status = 0
        return _death(status)

    def abort(self):
        """Kill and reap whatever was started (the create failed)."""
        process.kill_and_reap(self.stage1, self.init_pid)
        if self.chan is not None:
            self.chan.close()
            self.chan = None


# -- children -----------------------------------------------------------------------
def run_child(fn, job, chan_fd):
    """A child stage forked from the runtime: isolate it, then run ``fn(job, chan)``.
    It ends only in execve or os._exit; its errors go to the parent."""
    chan = None
    try:
        # Not dumpable: until it execs the sealed helper, nothing in the container
        # may reach this process through /proc (its exe is the host's python).
        linux.prctl(linux.PR_SET_DUMPABLE, 0, what="set not dumpable")
        # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive execve.
        for sig in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGINT):
            _signal.signal(sig, _signal.SIG_DFL)
        # No fd of the runtime (the state directory, the log...) but the child's own.
        process.close_fds_except(3 + job.preserve_fds, set(job.fds()) | {chan_fd})
        chan = Channel(chan_fd)
        fn(job, chan)
    except EOFError:
        os._exit(1)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, then exit
        _report(chan, e)
        os._exit(1)
    os._exit(0)


def fork_next(fn, job, chan):
    """Fork the next stage (it lands in the pid namespace just entered) and give its
    pid to the parent.  The child waits for "init" first, so that nothing it sends
    can overtake the "pid" message on the shared socket."""
    pid = os.fork()
    if pid == 0:
        try:
            chan.recv("init")
            fn(job, chan)
        except EOFError:
            os._exit(1)
        except BaseException as e:  # noqa: BLE001
            _report(chan, e)
            os._exit(1)
        os._exit(1)
    chan.send("pid", pid=pid)


def _report(chan, exc):
    try:
        if chan is not None:
            chan.send("error", msg=describe(exc), hook=isinstance(exc, HookError))
    except BaseException:  # noqa: BLE001 - the parent will see EOF instead
        pass


def _stage1(job, chan):
    job.cgroup_paths = chan.recv("go")["cgroup_paths"]
    plan = job.plan
    if "user" in plan.join:
        plan.join_all(until="user")
        _become_root(_joined_mappings("uid"), _joined_mappings("gid"))
    elif plan.new_user:
        # namespaces to join exist already, so the new user namespace owns none of
        # them: joined while the host's capabilities hold
        plan.join_all()
        linux.unshare(linux.CLONE_NEWUSER)
        # An unprivileged parent can only write the maps of a dumpable process;
        # no container process exists yet to take advantage of it.
        linux.prctl(linux.PR_SET_DUMPABLE, 1, what="set dumpable")
        chan.send("userns")
        chan.recv("maps")
        linux.prctl(linux.PR_SET_DUMPABLE, 0, what="set not dumpable")
        _become_root(job.linux.get("uidMappings"), job.linux.get("gidMappings"))
    plan.join_all()
    if plan.unshare_flags:
        linux.unshare(plan.unshare_flags)
    if "time" in plan.new and job.linux.get("timeOffsets"):
        # In a user namespace of its own, /proc/self of a process that is not
        # dumpable belongs to the host's root, which this root may not write:
        # dumpable for the write (no container process exists yet, as for the maps).
        dumpable = plan.new_user or "user" in plan.join
        if dumpable:
            linux.prctl(linux.PR_SET_DUMPABLE, 1, what="set dumpable")
        namespaces.write_time_offsets(job.linux["timeOffsets"])
        if dumpable:
            linux.prctl(linux.PR_SET_DUMPABLE, 0, what="set not dumpable")
    fork_next(_init, job, chan)


def _become_root(uid_mappings, gid_mappings):
    """Take uid/gid 0 of the user namespace just entered, where mapped: files the
    container's setup makes must belong to ids the namespace knows."""
    if any(m["containerID"] == 0 for m in gid_mappings or ()):
        os.setresgid(0, 0, 0)
    if any(m["containerID"] == 0 for m in uid_mappings or ()):
        os.setresuid(0, 0, 0)


def _joined_mappings(kind):
    """The mappings of the user namespace this process is in, from /proc/self."""
    with open(f"/proc/self/{kind}_map") as f:
        return [{"containerID": int(line.split()[0])} for line in f if line.strip()]


def _init(job, chan):
    """The container's init, up to the exec of the helper (steps 5-9)."""
    config, lin, proc = job.config, job.linux, job.process or {}
    plan = job.plan
    os.setsid()
    if "network" in plan.new:
        namespaces.bring_up_loopback()
    def step(what):
        if job.trace:
            mark(chan, "init", what)

    step("started")
    fs = None
    if plan.has("mount"):
        fs = rootfs.Rootfs(config, job.bundle, job.cgroup_paths, cgroupns=plan.has("cgroup"),
                           userns=plan.has("user"), idmap_fds=job.idmap_fds)
        fs.prepare()
        step("mounts done")
        if devices.needs_dev_setup(config):
            devices.create_all(fs.root_fd, config, proc.get("terminal", False))
            step("devices done")
        cwd = proc.get("cwd")
        if cwd:
            fs.make_dir(cwd)
    if plan.has("uts"):
        if config.get("hostname"):
            linux.sethostname(config["hostname"])
        if config.get("domainname"):
            linux.setdomainname(config["domainname"])
    if proc.get("oomScoreAdj") is not None:
        linux.write_file("/proc/self/oom_score_adj", proc["oomScoreAdj"], "write oom_score_adj")

    chan.send("hooks")
    state = chan.recv("hooks-done")["state"]
    state["pid"] = os.getpid()
    hooks.run_all("createContainer", (config.get("hooks") or {}).get("createContainer"), state)

    step("createContainer hooks done")
    if fs is not None:
        fs.pivot(job.no_pivot)
    else:
        os.chroot(rootfs.Rootfs(config, job.bundle).path)
        os.chdir("/")
    if proc.get("terminal"):
        console.setup_in_container(job.console_fd, proc.get("consoleSize"), job.clear_onlcr)
    for key, value in (lin.get("sysctl") or {}).items():
        linux.write_file("/proc/sys/" + key.replace(".", "/"), value, f"write sysctl {key}")
    if fs is not None:
        fs.readonly_paths()
        fs.masked_paths()
        fs.finish_readonly()
        fs.readonly_root()

    step("rootfs finished")
    if not job.no_new_keyring:
        _join_keyring(job.id, chan)
    process.apply_attributes(lin, proc)
    env = process.environment(proc.get("env"))
    path = None
    if job.process is not None:
        cwd = proc.get("cwd") or "/"
        try:
            os.chdir(cwd)
        except OSError as e:
            raise Error(f"chdir to cwd ({cwd!r}) set in config.json failed: "
                        f"{os.strerror(e.errno).lower()}") from None
        user = proc.get("user") or {}
        if "HOME" not in env:
            env["HOME"] = process.home_of(user.get("uid", 0))
        path = process.find_executable(proc["args"][0], env)
        if user.get("umask") is not None:
            os.umask(user["umask"])
    # Before the seccomp filter, what can be: a profile may deny what the runtime
    # calls (close_range...), and after the filter only the channel and the exec
    # of the helper remain (the helper loads the filter itself where it can).
    process.prepare_fds(3 + job.preserve_fds, keep=(job.fifo_fd,))
    start_hooks = (config.get("hooks") or {}).get("startContainer")
    label = process.exec_label(proc)
    helper_filter = process.finish(proc, job.seccomp, chan, job.process is not None)
    step("process set up")
    chan.send("ready")
    chan.recv("run")
    if start_hooks:
        # Wait for `start` here, in Python, to run the hooks before the program;
        # the channel closed first, as the exec would, so that create returns.
        chan.close()
        report = os.open(f"/proc/self/fd/{job.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            state["status"] = "running"
            hooks.run_all("startContainer", start_hooks, state)
        except HookError as e:
            os.write(report, b"H" + str(e).encode())
            os._exit(1)
        os.set_inheritable(job.fifo_fd, False)
        os.set_inheritable(report, True)
        process.exec_helper(job.helper_fd, path, proc.get("args", ()), env, report_fd=report,
                            label=label, seccomp=helper_filter)
    process.exec_helper(job.helper_fd, path, proc.get("args", ()), env, fifo_fd=job.fifo_fd,
                        label=label, seccomp=helper_filter)



def _join_keyring(cid, chan):
    try:
        linux.join_session_keyring(f"_ses.{cid}")
    except Error as e:
        if getattr(e, "errno", None) != 38:  # ENOSYS: keyrings not built in
            raise
