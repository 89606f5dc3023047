"""Container lifecycle operations (runtime.md "Operations") over the state store:
create, start, kill, delete, state and the wait of ``run``."""

import errno
import os
import select

from . import hooks, state as st
from .errors import Error, HookError, StateError, SysError
from .log import log


def rootless(opts):
    """--rootless: "true", "false", or "auto": rootless unless the real root, that
    is, also as uid 0 of a user namespace other than the host's (rootless podman
    runs the runtime so), as runc decides."""
    mode = opts.get("rootless") or "auto"
    if mode != "auto":
        return mode == "true"
    return os.geteuid() != 0 or _in_user_namespace()


def store(opts):
    """The state directory: --root, else $XDG_RUNTIME_DIR/runtime for a user who is
    not the real root (runc's rule: the euid is not 0, or it is 0 in a user
    namespace and USER is unset or not "root"), else /run/runtime."""
    root = opts.get("root")
    if not root:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if xdg and (os.geteuid() != 0 or (
                _in_user_namespace() and os.environ.get("USER", "") != "root")):
            root = os.path.join(xdg, "runtime")
        else:
            root = st.DEFAULT_ROOT
    return st.Store(root)


def _in_user_namespace():
    """Whether this process is in a user namespace other than the initial one (whose
    uid_map is the whole range)."""
    try:
        with open("/proc/self/uid_map", "rb") as f:
            return f.read().split() != [b"0", b"0", b"4294967295"]
    except OSError:
        return False


def _owner():
    import pwd

    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def _cgroup_of(c):
    saved = c.state.get("cgroup")
    if not saved:
        return None
    from . import cgroups

    try:
        return cgroups.load_manager(saved)
    except ValueError as e:
        raise st.Malformed(f"container {c.id}: malformed state file: {e}") from None


# -- create ---------------------------------------------------------------------------
class Created:
    """What a successful create leaves to its caller (``run`` keeps going with it)."""

    def __init__(self, container, pid, master_fd=None):
        self.container = container
        self.pid = pid
        self.master_fd = master_fd


def create(opts, cid, bundle, pid_file="", console_socket="", no_pivot=False,
           no_new_keyring=False, preserve_fds=0, foreground=False):
    """Create the container; with ``foreground`` (``run`` without -d) a terminal's
    master comes back to the caller instead of going to a console socket."""
    from . import config as configmod, linux, protocol

    protocol.mark(log, "runtime", "create")
    bundle = os.path.abspath(bundle or ".")
    st.check_id(cid)
    config = configmod.load(bundle)
    protocol.mark(log, "runtime", "config loaded")
    proc = config.get("process") or {}
    terminal = bool(proc.get("terminal"))
    if terminal and not console_socket and not foreground:
        raise Error("cannot allocate tty if runtime will detach without setting console socket")
    if console_socket and not terminal:
        raise Error("cannot use console socket if runtime will not detach or allocate tty")
    try:
        preserve_fds = int(preserve_fds)
    except ValueError:
        raise Error(f"invalid value {preserve_fds!r} for flag --preserve-fds") from None
    check_host_support(config, opts)

    job = protocol.Job(cid, bundle, config)
    job.no_pivot = no_pivot
    job.no_new_keyring = no_new_keyring
    job.preserve_fds = preserve_fds + _listen_fds()
    job.trace = log.threshold == 0
    c = store(opts).create(cid)
    parent = None
    cgroup = None
    master_fd = None
    local_console = None
    try:
        lin = job.linux
        cgroup = _new_cgroup(cid, lin, opts)
        c.state = {
            "id": cid, "pid": 0, "status": st.CREATING, "bundle": bundle,
            "rootfs": _rootfs_path(config, bundle), "created": st.now_rfc3339(),
            "owner": _owner(), "annotations": config.get("annotations") or {},
        }
        if cgroup is not None:
            cgroup.plan()
            c.state["cgroup"] = cgroup.save()
        c.save_config(config)
        c.save()
        job.plan.open()
        os.mkfifo(c.path("exec.fifo"))
        # Writable by the container's user, whoever it is (the umask would not allow it).
        os.chmod(c.path("exec.fifo"), 0o622)
        job.fifo_fd = os.open(c.path("exec.fifo"), os.O_PATH | os.O_CLOEXEC)
        job.helper_fd = linux.memfd_exec_helper()
        if terminal:
            if console_socket:
                job.console_fd = _console().connect(console_socket)
            else:
                local_console, job.console_fd = protocol.socketpair()
                job.clear_onlcr = not os.isatty(1)
        if lin.get("seccomp"):
            from . import seccomp

            job.seccomp = seccomp.prepare(lin["seccomp"], seccomp.cache_dir())
            for w in getattr(job.seccomp, "warnings", ()):
                log.debug(w)
        if any(m.get("uidMappings") or {"idmap", "ridmap"} & set(m.get("options") or ())
               for m in config.get("mounts") or ()):
            from . import idmap

            job.idmap_fds = idmap.prepare(config)

        parent = protocol.Parent(job, cgroup, log)

        def on_cgroup():
            c.state["cgroup"] = cgroup.save()
            c.save()

        def on_pid(pid):
            c.state["pid"] = pid
            c.state["startTime"] = st.process_start_time(pid)
            c.save()
            if lin.get("netDevices"):
                from . import netdev

                netdev.move_all(lin["netDevices"], pid)

        def on_hooks(pid):
            h = config.get("hooks") or {}
            state = c.oci_state(st.CREATING)
            hooks.run_all("prestart", h.get("prestart"), state)
            hooks.run_all("createRuntime", h.get("createRuntime"), state)
            state.pop("pid", None)
            return state

        def on_seccomp(fd):
            from . import seccomp

            try:
                seccomp.send_notify_fd(lin["seccomp"]["listenerPath"], fd,
                                       c.oci_state(st.CREATING),
                                       lin["seccomp"].get("listenerMetadata", ""))
            finally:
                os.close(fd)

        parent.start(on_cgroup, on_pid, on_hooks, on_seccomp)
        if local_console is not None:
            master_fd = _console().recv_fd(local_console)
        parent.release()
        protocol.mark(log, "runtime", "released init")
        c.state["status"] = st.CREATED
        c.save()
        if pid_file:
            write_pid_file(pid_file, parent.init_pid)
    except BaseException as e:
        if parent is not None:
            parent.abort()
        _undo_create(c, cgroup, config)
        if isinstance(e, HookError):
            # A failed create hook stops the container and the lifecycle goes on
            # at step 12: after the destroy come the poststop hooks.
            _poststop(config, c.oci_state(st.STOPPED))
        if master_fd is not None:
            os.close(master_fd)
        raise
    finally:
        for fd in (job.fifo_fd, job.helper_fd, job.console_fd, local_console):
            if fd is not None:
                os.close(fd)
        for fd in job.idmap_fds.values():
            os.close(fd)
        job.plan.close()
        if cgroup is not None:
            cgroup.close()
    return Created(c, parent.init_pid, master_fd)


def _console():
    from . import console

    return console


def _listen_fds():
    """Socket activation: $LISTEN_FDS more fds are passed, as runc does."""
    try:
        return int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return 0


def _rootfs_path(config, bundle):
    root = config["root"]["path"]
    return root if root.startswith("/") else os.path.join(bundle, root)


def _new_cgroup(cid, lin, opts):
    from . import cgroups

    return cgroups.new_manager(cid, lin.get("cgroupsPath") or "",
                               systemd=bool(opts.get("systemd-cgroup")),
                               rootless=rootless(opts))


def _undo_create(c, cgroup, config):
    """A failed create leaves nothing behind; each step is tried whatever the
    others do, since this runs while another error is on its way out."""
    if cgroup is not None:
        try:
            if not own_pid_namespace(config):
                _kill_cgroup(cgroup)
            cgroup.destroy()
        except Exception as e:  # noqa: BLE001
            log.warning(f"cleanup of cgroup after failed create: {e}")
    try:
        c.remove()
    except OSError as e:
        log.warning(f"cleanup of state after failed create: {e}")
    c.close()


def check_host_support(config, opts):
    """Settings the kernel or the configuration of the host must allow: fail before
    anything is made, naming the field."""
    lin = config.get("linux") or {}
    kinds = {ns["type"] for ns in lin.get("namespaces") or ()}
    if (config.get("hostname") or config.get("domainname")) and "uts" not in kinds:
        raise Error("unable to set hostname without a private UTS namespace")
    for key in lin.get("sysctl") or {}:
        need = _sysctl_namespace(key)
        if need and need not in kinds:
            raise Error(f"sysctl {key!r} is not allowed in the host's {need} namespace")
    if "mount" not in kinds and (config.get("mounts") or lin.get("maskedPaths")
                                 or lin.get("readonlyPaths")):
        raise Error("mounts, maskedPaths and readonlyPaths need a mount namespace")
    check_lsm(config.get("process") or {}, lin.get("mountLabel"))
    if lin.get("intelRdt"):
        if not os.path.exists("/sys/fs/resctrl/schemata"):
            raise Error("linux.intelRdt: Intel RDT needs resctrl, which is not mounted on this "
                        "host (/sys/fs/resctrl)")
        raise Error("linux.intelRdt: Intel RDT is not supported by this runtime")


def check_lsm(proc, mount_label=None):
    """Labels must be applicable, not silently dropped (for create and exec)."""
    profile = proc.get("apparmorProfile")
    if profile and not _lsm_enabled("apparmor"):
        raise Error(f"process.apparmorProfile: cannot apply profile "
                    f"{profile!r}: AppArmor is not enabled on this host")
    if profile and not _apparmor_profile_loaded(profile):
        raise Error(f"process.apparmorProfile: cannot apply profile {profile!r}: "
                    "it is not loaded (see apparmor_parser(8))")
    for field, label in (("process.selinuxLabel", proc.get("selinuxLabel")),
                         ("linux.mountLabel", mount_label)):
        if not label:
            continue
        if not _lsm_enabled("selinux"):
            raise Error(f"{field}: cannot apply label {label!r}: SELinux is not enabled "
                        "on this host")
        if not _selinux_context_valid(label):
            raise Error(f"{field}: cannot apply label {label!r}: the loaded policy does not "
                        "define it")


def _apparmor_profile_loaded(profile):
    """Asked before anything is made: the kernel would only refuse the profile at the
    exec of the user's program, after create has returned.  True where the list
    cannot be read (no securityfs) or names another policy namespace; then that
    late refusal is the error."""
    if profile == "unconfined" or profile.startswith(":"):
        return True
    try:
        with open("/sys/kernel/security/apparmor/profiles") as f:
            listing = f.read()
    except OSError:
        return True
    return any(line.rsplit(" (", 1)[0] == profile for line in listing.splitlines())


def _selinux_context_valid(label):
    """The kernel's own check (libselinux's security_check_context): otherwise a bad
    label would only be refused at the exec of the user's program, after create."""
    try:
        fd = os.open("/sys/fs/selinux/context", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        os.write(fd, label.encode() + b"\0")
    except OSError as e:
        return e.errno != errno.EINVAL
    finally:
        os.close(fd)
    return True


def _lsm_enabled(name):
    if name == "apparmor":
        try:
            with open("/sys/module/apparmor/parameters/enabled") as f:
                return f.read().strip() == "Y"
        except OSError:
            return False
    return os.path.exists("/sys/fs/selinux/enforce")


def _sysctl_namespace(key):
    if key.startswith("net."):
        return "network"
    if key.startswith(("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")):
        return "ipc"
    if key in ("kernel.hostname", "kernel.domainname"):
        return "uts"
    return None


def write_pid_file(path, pid):
    """The decimal pid, no newline, written atomically (as runc does)."""
    path = os.path.abspath(path)
    try:
        st.write_atomic(path, str(pid), 0o644)
    except OSError as e:
        raise SysError("write pid file", e.errno, path) from None


# -- start ----------------------------------------------------------------------------
def start(opts, cid):
    with store(opts).open(cid) as c:
        status = c.status(locked=True)
        if status == st.STOPPED:
            raise StateError("cannot start a container that has stopped")
        if status in (st.RUNNING, st.PAUSED):
            raise StateError("cannot start an already running container")
        if status != st.CREATED:
            raise StateError(f"cannot start a container in status {status}")
        config = c.config()
        if not config.get("process"):
            raise StateError("cannot start a container with no process: process was not set")
        try:
            _release(c, config)
            c.state["status"] = st.RUNNING
            c.save()
            hooks.run_all("poststart", (config.get("hooks") or {}).get("poststart"),
                          c.oci_state(st.RUNNING))
        except HookError:
            # A failed startContainer or poststart hook: stop the container and go
            # on with lifecycle steps 12 and 13, the destroy and poststop hooks.
            _stop(c, _cgroup_of(c))
            destroy(c, _cgroup_of(c))
            raise


def _release(c, config):
    """Open the exec fifo: the init execs the program.  EOF means it did; a record
    means it did not ("E<errno>" from the helper, "H<text>" a failed
    startContainer hook, raised as a HookError)."""
    fifo = c.path("exec.fifo")
    pidfd = _pidfd(c)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    # Gone from now on, whatever happens to this command: the program runs as soon
    # as the helper has opened its end, even if we are killed before reading.
    os.unlink(fifo)
    data = b""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if fd in events:
                chunk = os.read(fd, 4096)
                if chunk:
                    data += chunk
                    continue
                if events[fd] & select.POLLHUP:
                    break
            if pidfd in events:
                # The init died; anything it wrote is in the fifo already.
                try:
                    data += os.read(fd, 4096)
                except BlockingIOError:
                    pass
                if not data:
                    raise StateError("cannot start a container whose init process has exited")
                break
    finally:
        os.close(fd)
        os.close(pidfd)
    if data:
        from .process import helper_failure

        args = (config.get("process") or {}).get("args") or ["?"]
        raise helper_failure(data, args[0])


def _pidfd(c):
    """A pidfd of the container's init, checked to be the same process (not a
    reused pid) after it was opened."""
    try:
        pidfd = os.pidfd_open(c.pid)
    except (ProcessLookupError, OSError):
        raise StateError("container not running") from None
    if not c.alive():
        os.close(pidfd)
        raise StateError("container not running")
    return pidfd


# -- kill -----------------------------------------------------------------------------
def kill(opts, cid, sig, all_processes=False):
    from . import linux

    with store(opts).open(cid) as c:
        cgroup = _cgroup_of(c)
        status = c.status(cgroup, locked=True)
        if status not in (st.CREATED, st.RUNNING, st.PAUSED):
            raise StateError("container not running")
        if all_processes:
            if cgroup is None:
                raise Error("kill --all needs the container's cgroup")
            cgroup.signal_all(sig)
            return
        pidfd = _pidfd(c)
        try:
            linux.pidfd_send_signal(pidfd, sig)
        finally:
            os.close(pidfd)


def _kill_init(c, sig):
    from . import linux

    try:
        pidfd = _pidfd(c)
    except StateError:
        return None
    try:
        linux.pidfd_send_signal(pidfd, sig)
    except Error:
        pass
    return pidfd


def _kill_cgroup(cgroup):
    """SIGKILL what is left in the cgroup (a container without its own pid namespace
    can leave processes behind its init) and wait for it to empty."""
    import time

    if cgroup is None:
        return
    deadline = time.monotonic() + 10
    while True:
        try:
            pids = cgroup.pids()
        except Error:
            return
        if not pids:
            return
        if cgroup.frozen():
            cgroup.thaw()
        cgroup.signal_all(9)
        if time.monotonic() > deadline:
            raise Error(f"processes {pids[:10]} did not die after SIGKILL")
        time.sleep(0.002)


# -- delete ---------------------------------------------------------------------------
def delete(opts, cid, force=False):
    s = store(opts)
    try:
        c = s.open(cid)
    except st.NotFound:
        if force:
            s.remove_stray(cid)
            return
        raise
    with c:
        broken = c.state.get("broken")
        if broken:
            if not force and os.path.exists(c.path("state.json")):
                raise Error(f"{broken} (delete --force removes it)")
            _clean_broken(c, bool(opts.get("systemd-cgroup")))
            return
        try:
            cgroup = _cgroup_of(c)
        except st.Malformed as e:
            if not force:
                raise Error(f"{e} (delete --force removes it)") from None
            _clean_broken(c, bool(opts.get("systemd-cgroup")))
            return
        status = c.status(cgroup, locked=True)
        if status != st.STOPPED and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {status}")
        if status != st.STOPPED:
            _stop(c, cgroup, paused=status == st.PAUSED)
        destroy(c, cgroup)


def _stop(c, cgroup, paused=False):
    """SIGKILL the init and wait for it to be gone."""
    pidfd = _kill_init(c, 9)
    if paused and cgroup is not None:
        cgroup.thaw()
    if pidfd is not None:
        try:
            if not select.select([pidfd], [], [], 10)[0]:
                raise Error(f"container {c.id}: init did not exit after SIGKILL")
        finally:
            os.close(pidfd)


def _clean_broken(c, systemd=False):
    """delete --force of a container whose state.json is missing or damaged: the
    saved config still says where its cgroup is; kill what runs there, remove the
    container's own cgroup directories (or stop its systemd unit) and the state
    directory."""
    try:
        config = c.config()
        path = (config.get("linux") or {}).get("cgroupsPath")
    except Error:
        config, path = {}, None
    if path:
        from . import cgroups
        from .cgroups.fs import rmdir_if_empty

        try:
            cgroup = cgroups.new_manager(c.id, path, systemd=systemd)
            _kill_cgroup(cgroup)
            if systemd:
                cgroup.destroy()
            for d in sorted(set(cgroup.paths().values()), key=len, reverse=True):
                rmdir_if_empty(d)
        except Error as e:
            log.warning(f"cleanup of the cgroup of {c.id}: {e}")
    c.remove()


def own_pid_namespace(config):
    return any(ns.get("type") == "pid" and not ns.get("path")
               for ns in (config.get("linux") or {}).get("namespaces") or ())


def destroy(c, cgroup):
    """Undo the create (runtime.md lifecycle step 12), then the poststop hooks."""
    try:
        config = c.config()
    except Error:
        config = {}
    if cgroup is not None:
        # With its own pid namespace the container's processes died with its init,
        # unless the init was never recorded (a create killed while the init still
        # worked): what is in cgroups this container made is its own, while what
        # else is in one that existed before is not ours to kill.
        made_here = set(cgroup.paths().values()) <= set(cgroup.created)
        if not own_pid_namespace(config) or made_here:
            _kill_cgroup(cgroup)
        cgroup.destroy()
    _poststop(config, c.oci_state(st.STOPPED))
    c.remove()


def _poststop(config, state):
    """poststop hooks: a failure is a warning and the others still run."""
    from . import jsonfast

    data = jsonfast.dumps(state).encode()
    for i, hook in enumerate((config.get("hooks") or {}).get("poststop") or ()):
        try:
            hooks.run("poststop", i, hook, data)
        except HookError as e:
            log.warning(str(e))


# -- state and list -------------------------------------------------------------------
def state(opts, cid):
    with store(opts).open(cid, lock=False) as c:
        return c.oci_state(c.status(_cgroup_of(c)))


def list_states(opts):
    out = []
    s = store(opts)
    for cid in s.ids():
        try:
            with s.open(cid, lock=False) as c:
                status = c.status(_cgroup_of(c))
                out.append(c.oci_state(status))
        except Error as e:
            log.warning(f"load container {cid}: {e}")
    return out
