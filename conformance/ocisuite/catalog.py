"""The requirement catalog of runtime-spec v1.3 (Linux).

One entry per MUST / MUST NOT / SHOULD / SHOULD NOT / REQUIRED sentence of runtime.md,
runtime-linux.md, config.md, config-linux.md, features.md and features-linux.md that
binds a Linux runtime, plus entries of level "MUST*" for config fields whose meaning
the spec states without a keyword ("x sets y") -- the fields a runtime has to honour.

Where the spec puts a MUST on the *config author* (e.g. "cwd MUST be absolute"),
config.md#valid-values ("Runtimes MUST generate an error when invalid or
unsupported values are encountered") turns it into a runtime requirement: reject it.

Columns: id | spec file#anchor | level | requirement in our words.
"""

_TABLE = r"""
# ------------------------------------------------------------ runtime.md
rt.scope | runtime.md#runtimeScopeContainer | MUST | The caller that created a container can use state, start, kill and delete on it.
rt.state.ociVersion | runtime.md#runtimeState | REQUIRED | The state has a string `ociVersion`.
rt.state.id | runtime.md#runtimeState | REQUIRED | The state's `id` is the container's ID.
rt.state.id-unique | runtime.md#runtimeState | MUST | IDs are unique on the host: a second container cannot take a live container's ID.
rt.state.status | runtime.md#runtimeState | REQUIRED | The state has a string `status`.
rt.state.status-created | runtime.md#runtimeState | REQUIRED | After create and before start, `status` is `created`.
rt.state.status-running | runtime.md#runtimeState | REQUIRED | After start, while the user program runs, `status` is `running`.
rt.state.status-stopped | runtime.md#runtimeState | REQUIRED | After the container process exits, `status` is `stopped`.
rt.state.status-new-only | runtime.md#runtimeState | MUST | Runtime-defined status values are used only for new states, never instead of created/running/stopped.
rt.state.pid | runtime.md#runtimeState | REQUIRED | When created or running, `pid` is the container process as the runtime sees it.
rt.state.pid-hook-runtime | runtime.md#runtimeState | REQUIRED | Hooks run in the runtime namespace get `pid` as seen by the runtime.
rt.state.pid-hook-container | runtime.md#runtimeState | REQUIRED | Hooks run in the container namespace get `pid` as seen by the container.
rt.state.bundle | runtime.md#runtimeState | REQUIRED | `bundle` is the absolute path of the bundle directory.
rt.state.annotations | runtime.md#runtimeState | MUST* | `annotations`, when present, are the container's annotations (a map of strings).
rt.state.schema | runtime.md#runtimeState | MUST | The state JSON adheres to state-schema.json.
rt.lc.create-env | runtime.md#runtimeLifecycle | MUST | At create the environment is built as config.json says (namespaces, cgroups, hostname... before start).
rt.lc.create-error | runtime.md#runtimeLifecycle | MUST | If the environment cannot be created, create fails.
rt.lc.create-no-run | runtime.md#runtimeLifecycle | MUST NOT | The user program does not run during create.
rt.lc.config-frozen | runtime.md#runtimeLifecycle | MUST NOT | Changes to config.json after create do not affect the container.
rt.lc.prestart | runtime.md#runtimeLifecycle | MUST | prestart hooks are invoked.
rt.lc.prestart-fail | runtime.md#runtimeLifecycle | MUST | A failing prestart hook fails create and the container is stopped and destroyed.
rt.lc.createRuntime | runtime.md#runtimeLifecycle | MUST | createRuntime hooks are invoked.
rt.lc.createRuntime-fail | runtime.md#runtimeLifecycle | MUST | A failing createRuntime hook fails create and the container is stopped and destroyed.
rt.lc.createContainer | runtime.md#runtimeLifecycle | MUST | createContainer hooks are invoked.
rt.lc.createContainer-fail | runtime.md#runtimeLifecycle | MUST | A failing createContainer hook fails create and the container is stopped and destroyed.
rt.lc.startContainer | runtime.md#runtimeLifecycle | MUST | startContainer hooks are invoked.
rt.lc.startContainer-fail | runtime.md#runtimeLifecycle | MUST | A failing startContainer hook fails start; the user program does not run; the container is stopped and destroyed.
rt.lc.start-run | runtime.md#runtimeLifecycle | MUST | The user program is run as `process` specifies (step 8).
rt.lc.poststart | runtime.md#runtimeLifecycle | MUST | poststart hooks are invoked.
rt.lc.poststart-fail | runtime.md#runtimeLifecycle | MUST | A failing poststart hook fails start and the container is stopped and destroyed.
rt.lc.hookfail-poststop | runtime.md#runtimeLifecycle | MUST | After a create-time hook failure the lifecycle continues at step 12: destroyed, then poststop hooks run.
rt.lc.delete-destroy | runtime.md#runtimeLifecycle | MUST | delete undoes create: cgroups, state, mounts and processes are gone.
rt.lc.poststop | runtime.md#runtimeLifecycle | MUST | poststop hooks are invoked at delete.
rt.lc.poststop-fail | runtime.md#runtimeLifecycle | MUST | A failing poststop hook is only a warning: later poststop hooks run and delete succeeds.
rt.err.no-trace | runtime.md#runtimeErrors | MUST | An operation that errors leaves the host as if it had not been attempted (no state, cgroup, process, mount).
rt.warn.continue | runtime.md#runtimeWarnings | MUST | Logging a warning does not change the flow of the operation.
rt.ops.supported | runtime.md#runtimeOperations | MUST | state, create, start, kill and delete are supported.
rt.state-op.no-id | runtime.md#runtimeQueryState | MUST | `state` without an ID is an error.
rt.state-op.unknown | runtime.md#runtimeQueryState | MUST | `state` of a container that does not exist is an error.
rt.state-op.returns | runtime.md#runtimeQueryState | MUST | `state` returns the state as the State section describes.
rt.create.missing-args | runtime.md#runtimeCreate | MUST | create without an ID, or without a usable bundle path, is an error.
rt.create.dup-id | runtime.md#runtimeCreate | MUST | create with an ID already in use fails, creates nothing and leaves the existing container alone.
rt.create.invalid-id | runtime.md#runtimeCreate | MUST | create with an invalid ID (path separators, `..`) fails and creates nothing.
rt.create.new | runtime.md#runtimeCreate | MUST | create creates a new container.
rt.create.apply-all | runtime.md#runtimeCreate | MUST | All config properties except `process` are applied by create.
rt.create.no-args | runtime.md#runtimeCreate | MUST NOT | `process.args` is not applied before start.
rt.create.cannot-apply | runtime.md#runtimeCreate | MUST | A property that cannot be applied fails create and no container is created.
rt.start.no-id | runtime.md#runtimeStart | MUST | `start` without an ID is an error.
rt.start.not-created | runtime.md#runtimeStart | MUST | `start` of a container that is not `created` fails and has no effect on it.
rt.start.run | runtime.md#runtimeStart | MUST | `start` runs the user program as `process` specifies.
rt.start.no-process | runtime.md#runtimeStart | MUST | Starting a container whose config has no `process` is an error.
rt.kill.no-id | runtime.md#runtimeKill | MUST | `kill` without an ID is an error.
rt.kill.not-running | runtime.md#runtimeKill | MUST | `kill` of a stopped container fails and has no effect on it.
rt.kill.signal | runtime.md#runtimeKill | MUST | `kill` sends the given signal to the container process (running container).
rt.kill.created | runtime.md#runtimeKill | MUST | `kill` of a `created` container sends the signal to its process.
rt.delete.no-id | runtime.md#runtimeDelete | MUST | `delete` without an ID is an error.
rt.delete.running | runtime.md#runtimeDelete | MUST | `delete` (no force) of a running container fails and has no effect on it.
rt.delete.created | runtime.md#runtimeDelete | MUST | `delete` (no force) of a `created` container fails and has no effect on it.
rt.delete.resources | runtime.md#runtimeDelete | MUST | `delete` removes the resources create made (state, cgroup, namespaces' processes).
rt.delete.keep-foreign | runtime.md#runtimeDelete | MUST NOT | `delete` does not remove resources it did not create (bind-mount sources, joined namespaces).
rt.delete.keep-foreign-cgroup | runtime.md#runtimeDelete | MUST NOT | `delete` does not remove a cgroup that existed before create.
# ------------------------------------------------------------ runtime-linux.md
rtl.fds | runtime-linux.md#runtimeLinuxFileDescriptors | MUST* | By default only stdin, stdout and stderr are open in the container process.
rtl.devlinks | runtime-linux.md#runtimeLinuxDevSymbolicLinks | MUST | /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr are symlinks to /proc/self/fd, /proc/self/fd/0, 1, 2.
# ------------------------------------------------------------ config.md
cfg.ociVersion | config.md#configSpecificationVersion | MUST* | Configs of earlier 1.x versions (1.0.0, 1.1.0, 1.2.0) and 1.3.0 are accepted (compatible within the major version).
cfg.root.required | config.md#configRoot | REQUIRED | A Linux config without `root` is invalid and rejected.
cfg.root.path-relative | config.md#configRoot | REQUIRED | A relative `root.path` is taken relative to the bundle.
cfg.root.path-absolute | config.md#configRoot | REQUIRED | An absolute `root.path` is used as is.
cfg.root.path-exists | config.md#configRoot | MUST | `root.path` must be an existing directory: a missing one is rejected.
cfg.root.readonly | config.md#configRoot | MUST | `root.readonly: true` makes the root filesystem read-only in the container.
cfg.root.readonly-default | config.md#configRoot | MUST* | Without `readonly` the root filesystem is writable.
cfg.mounts.order | config.md#configMounts | MUST | Mounts are mounted in the listed order.
cfg.mounts.dest-relative | config.md#configMounts | MUST | A relative mount destination is interpreted relative to `/`.
cfg.mounts.bind-source-relative | config.md#configMounts | MUST* | A relative bind-mount source is relative to the bundle.
cfg.mounts.type | config.md#configPOSIXMounts | MUST* | `type` selects the filesystem type (tmpfs, proc, mqueue, sysfs).
cfg.mounts.opt.async | config.md#configLinuxMountOptions | MUST | Mount option `async` (clears sync).
cfg.mounts.opt.atime | config.md#configLinuxMountOptions | MUST | Mount option `atime` (clears noatime).
cfg.mounts.opt.bind | config.md#configLinuxMountOptions | MUST | Mount option `bind`.
cfg.mounts.opt.defaults | config.md#configLinuxMountOptions | MUST | Mount option `defaults` (rw, suid, dev, exec).
cfg.mounts.opt.dev | config.md#configLinuxMountOptions | MUST | Mount option `dev` (clears nodev).
cfg.mounts.opt.diratime | config.md#configLinuxMountOptions | MUST | Mount option `diratime` (clears nodiratime).
cfg.mounts.opt.dirsync | config.md#configLinuxMountOptions | MUST | Mount option `dirsync`.
cfg.mounts.opt.exec | config.md#configLinuxMountOptions | MUST | Mount option `exec` (clears noexec).
cfg.mounts.opt.iversion | config.md#configLinuxMountOptions | MUST | Mount option `iversion` is accepted.
cfg.mounts.opt.lazytime | config.md#configLinuxMountOptions | MUST | Mount option `lazytime`.
cfg.mounts.opt.loud | config.md#configLinuxMountOptions | MUST | Mount option `loud` is accepted.
cfg.mounts.opt.noatime | config.md#configLinuxMountOptions | MUST | Mount option `noatime`.
cfg.mounts.opt.nodev | config.md#configLinuxMountOptions | MUST | Mount option `nodev`.
cfg.mounts.opt.nodiratime | config.md#configLinuxMountOptions | MUST | Mount option `nodiratime`.
cfg.mounts.opt.noexec | config.md#configLinuxMountOptions | MUST | Mount option `noexec`.
cfg.mounts.opt.noiversion | config.md#configLinuxMountOptions | MUST | Mount option `noiversion` is accepted.
cfg.mounts.opt.nolazytime | config.md#configLinuxMountOptions | MUST | Mount option `nolazytime` (clears lazytime).
cfg.mounts.opt.norelatime | config.md#configLinuxMountOptions | MUST | Mount option `norelatime` is accepted.
cfg.mounts.opt.nostrictatime | config.md#configLinuxMountOptions | MUST | Mount option `nostrictatime` (clears strictatime: back to the kernel default relatime).
cfg.mounts.opt.nosuid | config.md#configLinuxMountOptions | MUST | Mount option `nosuid`.
cfg.mounts.opt.nosymfollow | config.md#configLinuxMountOptions | SHOULD | Mount option `nosymfollow`.
cfg.mounts.opt.private | config.md#configLinuxMountOptions | MUST | Mount option `private` (no peer group, no master).
cfg.mounts.opt.ratime | config.md#configLinuxMountOptions | SHOULD | Mount option `ratime` (recursive atime).
cfg.mounts.opt.rbind | config.md#configLinuxMountOptions | MUST | Mount option `rbind` (submounts come along).
cfg.mounts.opt.rdev | config.md#configLinuxMountOptions | SHOULD | Mount option `rdev` (recursive dev).
cfg.mounts.opt.rdiratime | config.md#configLinuxMountOptions | SHOULD | Mount option `rdiratime` (recursive diratime).
cfg.mounts.opt.relatime | config.md#configLinuxMountOptions | MUST | Mount option `relatime`.
cfg.mounts.opt.remount | config.md#configLinuxMountOptions | MUST | Mount option `remount` changes an existing mount.
cfg.mounts.opt.rexec | config.md#configLinuxMountOptions | SHOULD | Mount option `rexec` (recursive exec).
cfg.mounts.opt.rnoatime | config.md#configLinuxMountOptions | SHOULD | Mount option `rnoatime` (recursive noatime).
cfg.mounts.opt.rnodiratime | config.md#configLinuxMountOptions | SHOULD | Mount option `rnodiratime` (recursive nodiratime).
cfg.mounts.opt.rnoexec | config.md#configLinuxMountOptions | SHOULD | Mount option `rnoexec` (recursive noexec).
cfg.mounts.opt.rnorelatime | config.md#configLinuxMountOptions | SHOULD | Mount option `rnorelatime` is accepted.
cfg.mounts.opt.rnostrictatime | config.md#configLinuxMountOptions | SHOULD | Mount option `rnostrictatime` is accepted.
cfg.mounts.opt.rnosuid | config.md#configLinuxMountOptions | SHOULD | Mount option `rnosuid` (recursive nosuid).
cfg.mounts.opt.rnosymfollow | config.md#configLinuxMountOptions | SHOULD | Mount option `rnosymfollow` (recursive nosymfollow).
cfg.mounts.opt.ro | config.md#configLinuxMountOptions | MUST | Mount option `ro`.
cfg.mounts.opt.rprivate | config.md#configLinuxMountOptions | MUST | Mount option `rprivate` (recursive private).
cfg.mounts.opt.rrelatime | config.md#configLinuxMountOptions | SHOULD | Mount option `rrelatime` (recursive relatime).
cfg.mounts.opt.rro | config.md#configLinuxMountOptions | SHOULD | Mount option `rro` (recursive ro).
cfg.mounts.opt.rrw | config.md#configLinuxMountOptions | SHOULD | Mount option `rrw` (recursive rw).
cfg.mounts.opt.rshared | config.md#configLinuxMountOptions | MUST | Mount option `rshared` (recursive shared).
cfg.mounts.opt.rslave | config.md#configLinuxMountOptions | MUST | Mount option `rslave` (recursive slave).
cfg.mounts.opt.rstrictatime | config.md#configLinuxMountOptions | SHOULD | Mount option `rstrictatime` (recursive strictatime).
cfg.mounts.opt.rsuid | config.md#configLinuxMountOptions | SHOULD | Mount option `rsuid` (recursive suid).
cfg.mounts.opt.rsymfollow | config.md#configLinuxMountOptions | SHOULD | Mount option `rsymfollow` (recursive symfollow).
cfg.mounts.opt.runbindable | config.md#configLinuxMountOptions | MUST | Mount option `runbindable` (recursive unbindable).
cfg.mounts.opt.rw | config.md#configLinuxMountOptions | MUST | Mount option `rw`.
cfg.mounts.opt.shared | config.md#configLinuxMountOptions | MUST | Mount option `shared`.
cfg.mounts.opt.silent | config.md#configLinuxMountOptions | MUST | Mount option `silent` is accepted.
cfg.mounts.opt.slave | config.md#configLinuxMountOptions | MUST | Mount option `slave`.
cfg.mounts.opt.strictatime | config.md#configLinuxMountOptions | MUST | Mount option `strictatime`.
cfg.mounts.opt.suid | config.md#configLinuxMountOptions | MUST | Mount option `suid` (clears nosuid).
cfg.mounts.opt.symfollow | config.md#configLinuxMountOptions | SHOULD | Mount option `symfollow` (clears nosymfollow).
cfg.mounts.opt.sync | config.md#configLinuxMountOptions | MUST | Mount option `sync`.
cfg.mounts.opt.unbindable | config.md#configLinuxMountOptions | MUST | Mount option `unbindable`.
cfg.mounts.opt.idmap | config.md#configLinuxMountOptions | SHOULD | Mount option `idmap`: an id-mapped bind mount.
cfg.mounts.opt.ridmap | config.md#configLinuxMountOptions | SHOULD | Mount option `ridmap`: a recursively id-mapped bind mount.
cfg.mounts.idmap-mappings | config.md#configLinuxMountOptions | MUST | With `idmap` and mount uidMappings/gidMappings, exactly those mappings are used.
cfg.mounts.idmap-no-userns | config.md#configLinuxMountOptions | MUST | `idmap` without mount mappings and without a user namespace is an error.
cfg.mounts.ridmap-mappings | config.md#configLinuxMountOptions | MUST | With `ridmap` and mount mappings, those mappings are used on the mount and its submounts.
cfg.mounts.ridmap-no-userns | config.md#configLinuxMountOptions | MUST | `ridmap` without mount mappings and without a user namespace is an error.
cfg.mounts.custom-mount8 | config.md#configLinuxMountOptions | SHOULD | Options mount(8) knows but are not in the table (auto, nofail, nouser) behave as in mount(8): no effect on the mount.
cfg.mounts.fs-specific | config.md#configLinuxMountOptions | SHOULD | Unknown options are passed to mount(2) as filesystem data (tmpfs size=, mode=).
cfg.mounts.mappings-pair | config.md#configPOSIXMounts | MUST | Mount uidMappings without gidMappings (or the reverse) is invalid and rejected.
cfg.process.required | config.md#configProcess | REQUIRED | `process` is required when start is called.
cfg.process.terminal | config.md#configProcess | MUST* | `terminal: true` gives the process a pseudoterminal on its standard streams (via --console-socket).
cfg.process.consoleSize | config.md#configProcess | MUST* | `consoleSize` sets the terminal size when `terminal` is true.
cfg.process.consoleSize-ignore | config.md#configProcess | MUST | `consoleSize` is ignored when `terminal` is false.
cfg.process.cwd | config.md#configProcess | REQUIRED | `cwd` is the working directory of the process.
cfg.process.cwd-absolute | config.md#configProcess | MUST | A relative `cwd` is invalid and rejected.
cfg.process.env | config.md#configProcess | MUST* | `env` is the process environment, as given.
cfg.process.args | config.md#configProcess | REQUIRED | `args` is the argv of the process, byte for byte.
cfg.process.args-path | config.md#configProcess | MUST* | args[0] is resolved like execvp's file, with PATH from `env`.
cfg.process.args-nonempty | config.md#configProcess | REQUIRED | Empty `args` is invalid and rejected.
cfg.rlimits.type-error | config.md#configPOSIXProcess | MUST | An rlimit type that maps to no kernel resource is an error.
cfg.rlimits.getrlimit | config.md#configPOSIXProcess | MUST | getrlimit succeeds in the container for every configured type.
cfg.rlimits.soft | config.md#configPOSIXProcess | MUST | rlim_cur equals `soft`.
cfg.rlimits.hard | config.md#configPOSIXProcess | MUST | rlim_max equals `hard`.
cfg.rlimits.dup | config.md#configPOSIXProcess | MUST | Duplicate rlimit types are an error.
cfg.caps.effective | config.md#configLinuxProcess | MUST* | capabilities.effective is the effective set.
cfg.caps.bounding | config.md#configLinuxProcess | MUST* | capabilities.bounding is the bounding set.
cfg.caps.inheritable | config.md#configLinuxProcess | MUST* | capabilities.inheritable is the inheritable set.
cfg.caps.permitted | config.md#configLinuxProcess | MUST* | capabilities.permitted is the permitted set.
cfg.caps.ambient | config.md#configLinuxProcess | MUST* | capabilities.ambient is the ambient set.
cfg.caps.unknown-warn | config.md#configLinuxProcess | MUST | A capability that cannot be mapped or granted is logged as a warning.
cfg.caps.unknown-nofail | config.md#configLinuxProcess | SHOULD NOT | A capability that cannot be mapped or granted does not make create fail.
cfg.process.noNewPrivileges | config.md#configLinuxProcess | MUST* | `noNewPrivileges: true` sets no_new_privs; false leaves it unset.
cfg.process.oom-set | config.md#configLinuxProcess | MUST | `oomScoreAdj` sets /proc/PID/oom_score_adj.
cfg.process.oom-unset | config.md#configLinuxProcess | MUST NOT | Without `oomScoreAdj` the inherited oom_score_adj is not changed.
cfg.process.sched-policy | config.md#configLinuxProcess | MUST* | `scheduler.policy` sets the scheduling policy.
cfg.process.sched-nice | config.md#configLinuxProcess | MUST* | `scheduler.nice` sets the nice value.
cfg.process.sched-priority | config.md#configLinuxProcess | MUST* | `scheduler.priority` sets the static (real-time) priority.
cfg.process.sched-deadline | config.md#configLinuxProcess | MUST* | `scheduler` runtime/deadline/period set SCHED_DEADLINE parameters.
cfg.process.sched-flags | config.md#configLinuxProcess | MUST* | `scheduler.flags` sets scheduling flags (SCHED_FLAG_RESET_ON_FORK).
cfg.process.ioPriority | config.md#configLinuxProcess | MUST* | `ioPriority` sets the I/O scheduling class and level.
cfg.process.execCPUAffinity | config.md#configLinuxProcess | SHOULD NOT | Without `execCPUAffinity.final` the affinity is not changed after joining the cgroup (exec only).
cfg.process.apparmorProfile | config.md#configLinuxProcess | MUST* | `apparmorProfile` is applied to the process.
cfg.process.selinuxLabel | config.md#configLinuxProcess | MUST* | `selinuxLabel` is applied to the process.
cfg.user.uid | config.md#configPOSIXUser | REQUIRED | `user.uid` is the process uid (real, effective, saved, fs).
cfg.user.gid | config.md#configPOSIXUser | REQUIRED | `user.gid` is the process gid.
cfg.user.additionalGids | config.md#configPOSIXUser | MUST* | `additionalGids` are the supplementary groups.
cfg.user.umask | config.md#configPOSIXUser | MUST* | `umask` is the process umask.
cfg.hostname | config.md#configHostname | MUST* | `hostname` is the hostname seen in the container's UTS namespace.
cfg.domainname | config.md#configDomainname | MUST* | `domainname` is the NIS domain name seen in the container's UTS namespace.
cfg.hooks.path-absolute | config.md#configHooks | MUST | A hook with a relative `path` is invalid and rejected.
cfg.hooks.timeout-positive | config.md#configHooks | MUST | A hook `timeout` of 0 is invalid and rejected.
cfg.hooks.timeout | config.md#configHooks | MUST* | A hook running longer than `timeout` seconds is aborted (and the operation fails).
cfg.hooks.args | config.md#configHooks | MUST* | Hook `args` is the hook's argv.
cfg.hooks.env | config.md#configHooks | MUST* | Hook `env` is the hook's whole environment.
cfg.hooks.order | config.md#configHooks | MUST | Hooks of one kind run in the listed order.
cfg.hooks.state-stdin | config.md#configHooks | MUST | Every hook gets the container state on stdin.
cfg.hooks.prestart.resolve | config.md#configHooks | MUST | prestart `path` resolves in the runtime namespace.
cfg.hooks.prestart.ns | config.md#configHooksPrestart | MUST | prestart hooks run in the runtime namespace.
cfg.hooks.prestart.when | config.md#configHooksPrestart | MUST | prestart hooks run during create, after the namespaces exist, before pivot_root.
cfg.hooks.prestart.before-createRuntime | config.md#configHooksPrestart | MUST | prestart hooks run before createRuntime hooks.
cfg.hooks.createRuntime.resolve | config.md#configHooksCreateRuntime | MUST | createRuntime `path` resolves in the runtime namespace.
cfg.hooks.createRuntime.ns | config.md#configHooksCreateRuntime | MUST | createRuntime hooks run in the runtime namespace.
cfg.hooks.createRuntime.when | config.md#configHooksCreateRuntime | MUST | createRuntime hooks run during create, after the mounts are made, before pivot_root.
cfg.hooks.createContainer.resolve | config.md#configHooksCreateContainer | MUST | createContainer `path` resolves in the runtime namespace.
cfg.hooks.createContainer.ns | config.md#configHooksCreateContainer | MUST | createContainer hooks run in the container namespace.
cfg.hooks.createContainer.when | config.md#configHooksCreateContainer | MUST | createContainer hooks run during create, after the mounts are made, before pivot_root.
cfg.hooks.createContainer.after-createRuntime | config.md#configHooksCreateContainer | MUST | createContainer hooks run after createRuntime hooks.
cfg.hooks.startContainer.resolve | config.md#configHooksStartContainer | MUST | startContainer `path` resolves in the container namespace.
cfg.hooks.startContainer.ns | config.md#configHooksStartContainer | MUST | startContainer hooks run in the container namespace.
cfg.hooks.startContainer.when | config.md#configHooksStartContainer | MUST | startContainer hooks run during start, before the user program is executed.
cfg.hooks.poststart.resolve | config.md#configHooksPoststart | MUST | poststart `path` resolves in the runtime namespace.
cfg.hooks.poststart.ns | config.md#configHooksPoststart | MUST | poststart hooks run in the runtime namespace.
cfg.hooks.poststart.when | config.md#configHooksPoststart | MUST | poststart hooks run after the user program is executed and before start returns.
cfg.hooks.poststop.resolve | config.md#configHooksPoststop | MUST | poststop `path` resolves in the runtime namespace.
cfg.hooks.poststop.ns | config.md#configHooksPoststop | MUST | poststop hooks run in the runtime namespace.
cfg.hooks.poststop.when | config.md#configHooksPoststop | MUST | poststop hooks run after the container is deleted and before delete returns.
cfg.annotations.unknown | config.md#configAnnotations | MUST | Unknown annotation keys are handled like unknown properties (no error).
cfg.annotations.key-nonempty | config.md#configAnnotations | MUST NOT | An empty annotation key is invalid and rejected.
cfg.annotations.values-string | config.md#configAnnotations | MUST | A non-string annotation value is invalid and rejected.
cfg.ext.ignore-unknown | config.md#configExtensibility | MUST | Unknown properties are ignored, without an error.
cfg.valid-values | config.md#valid-values | MUST | Invalid or unsupported values are errors (unknown namespace type, seccomp action, propagation...).
# ------------------------------------------------------------ config-linux.md
lnx.fs.defaults | config-linux.md#configLinuxDefaultFilesystems | SHOULD | /proc (proc), /sys (sysfs), /dev/pts (devpts) and /dev/shm (tmpfs) are available.
lnx.ns.pid | config-linux.md#configLinuxNamespaces | SHOULD | pid namespaces are supported: the container sees only its own processes.
lnx.ns.network | config-linux.md#configLinuxNamespaces | SHOULD | network namespaces are supported: the container has its own network stack.
lnx.ns.mount | config-linux.md#configLinuxNamespaces | SHOULD | mount namespaces are supported: the container has its own mount table.
lnx.ns.ipc | config-linux.md#configLinuxNamespaces | SHOULD | ipc namespaces are supported.
lnx.ns.uts | config-linux.md#configLinuxNamespaces | SHOULD | uts namespaces are supported: own hostname and domain name.
lnx.ns.user | config-linux.md#configLinuxNamespaces | SHOULD | user namespaces are supported: ids are remapped.
lnx.ns.cgroup | config-linux.md#configLinuxNamespaces | SHOULD | cgroup namespaces are supported: the container's cgroup is its root.
lnx.ns.time | config-linux.md#configLinuxNamespaces | SHOULD | time namespaces are supported.
lnx.ns.path-absolute | config-linux.md#configLinuxNamespaces | MUST | A relative namespace `path` is invalid and rejected.
lnx.ns.path-join | config-linux.md#configLinuxNamespaces | MUST | With `path`, the process joins that namespace.
lnx.ns.path-join.user | config-linux.md#configLinuxNamespaces | MUST | With a user namespace `path` (another container's; no mappings in the config) and new mount, pid, ipc and uts namespaces, the process joins that user namespace and the container is set up in it.
lnx.ns.path-type-mismatch | config-linux.md#configLinuxNamespaces | MUST | A `path` that is not a namespace of `type` is an error.
lnx.ns.new | config-linux.md#configLinuxNamespaces | MUST | Without `path`, a new namespace of `type` is created.
lnx.ns.inherit | config-linux.md#configLinuxNamespaces | MUST | A type not listed is inherited from the runtime.
lnx.ns.dup | config-linux.md#configLinuxNamespaces | MUST | Duplicate namespace types are an error.
lnx.userns.mappings | config-linux.md#configLinuxUserNamespaceMappings | MUST* | uidMappings and gidMappings are the user namespace's uid_map and gid_map.
lnx.userns.no-chown | config-linux.md#configLinuxUserNamespaceMappings | SHOULD NOT | The rootfs ownership is not changed to realise the mapping.
lnx.timeOffsets | config-linux.md#configLinuxTimeOffset | MUST* | timeOffsets set the time namespace's clock offsets.
lnx.timeOffsets.userns | config-linux.md#configLinuxTimeOffset | MUST* | timeOffsets are set too when the container also has a new user namespace (which owns its time namespace).
lnx.devices.create | config-linux.md#configLinuxDevices | MUST | Listed devices (c, b, p) are available at their paths with their type and numbers.
lnx.devices.fileMode | config-linux.md#configLinuxDevices | MUST* | A device's `fileMode` is its permission bits.
lnx.devices.uid | config-linux.md#configLinuxDevices | MUST* | A device's `uid` is its owner.
lnx.devices.gid | config-linux.md#configLinuxDevices | MUST* | A device's `gid` is its group.
lnx.devices.conflict | config-linux.md#configLinuxDevices | MUST | A file already at a device path that does not match the device is an error.
lnx.devices.default.null | config-linux.md#configLinuxDefaultDevices | MUST | /dev/null is supplied.
lnx.devices.default.zero | config-linux.md#configLinuxDefaultDevices | MUST | /dev/zero is supplied.
lnx.devices.default.full | config-linux.md#configLinuxDefaultDevices | MUST | /dev/full is supplied.
lnx.devices.default.random | config-linux.md#configLinuxDefaultDevices | MUST | /dev/random is supplied.
lnx.devices.default.urandom | config-linux.md#configLinuxDefaultDevices | MUST | /dev/urandom is supplied.
lnx.devices.default.tty | config-linux.md#configLinuxDefaultDevices | MUST | /dev/tty is supplied.
lnx.devices.default.ptmx | config-linux.md#configLinuxDefaultDevices | MUST | /dev/ptmx is a bind mount or symlink of the container's /dev/pts/ptmx.
lnx.devices.default.console | config-linux.md#configLinuxDefaultDevices | MUST | With a terminal, /dev/console is the pty bind-mounted.
lnx.netdev.move | config-linux.md#configLinuxNetworkDevices | MUST | Listed network devices are made available in the container.
lnx.netdev.rename | config-linux.md#configLinuxNetworkDevices | MUST* | A device's `name` is its name in the container.
lnx.netdev.exists-error | config-linux.md#configLinuxNetworkDevices | MUST | Moving to a name that already exists in the container is an error.
lnx.netdev.template | config-linux.md#configLinuxNetworkDevices | MUST | A name with a `%d` template is allowed.
lnx.netdev.addresses | config-linux.md#configLinuxNetworkDevices | MUST | Permanent global addresses of the device are preserved.
lnx.netdev.up | config-linux.md#configLinuxNetworkDevices | MUST | The device is up in the container.
lnx.netdev.no-move-out | config-linux.md#configLinuxNetworkDevices | MUST NOT | The device is not moved back out of the namespace before deletion.
lnx.netdev.no-manage | config-linux.md#configLinuxNetworkDevices | MUST NOT | The runtime does not manage the interface's lifecycle inside the container's namespace.
lnx.cg.fit-check | config-linux.md#configLinuxControlGroups | MUST | If the runtime checks the cgroup is fit for purpose and the check fails, it errors.
lnx.cg.path-absolute | config-linux.md#configLinuxCgroupsPath | MUST | An absolute cgroupsPath is relative to the cgroup mount point (created if missing).
lnx.cg.path-consistent | config-linux.md#configLinuxCgroupsPath | MUST | The same cgroupsPath always lands in the same place.
lnx.cg.path-invalid | config-linux.md#configLinuxCgroupsPath | MUST | cgroupsPath values the runtime considers invalid are errors.
lnx.cg.owner-v1 | config-linux.md#configLinuxCgroupsPath | SHOULD NOT | On cgroup v1 the container cgroup's ownership is not changed.
lnx.cg.owner-needs-cgroupns | config-linux.md#configLinuxCgroupsPath | SHOULD NOT | Without a new cgroup namespace the cgroup's ownership is not changed (v2).
lnx.cg.owner-rw-only | config-linux.md#configLinuxCgroupsPath | SHOULD | Ownership changes iff /sys/fs/cgroup is mounted read-write (v2).
lnx.cg.owner-delegate-files | config-linux.md#configLinuxCgroupsPath | SHOULD | Only the cgroup directory and the files in /sys/kernel/cgroup/delegate change owner (v2).
lnx.cg.owner-missing-ok | config-linux.md#configLinuxCgroupsPath | MUST NOT | Missing delegate files do not make the runtime fail (v2).
lnx.cg.owner-fallback | config-linux.md#configLinuxCgroupsPath | MUST | Without /sys/kernel/cgroup/delegate, cgroup.procs, cgroup.subtree_control and cgroup.threads change owner (v2).
lnx.cg.owner-no-other | config-linux.md#configLinuxCgroupsPath | SHOULD NOT | No other cgroup file changes owner (v2).
lnx.devcg.order | config-linux.md#configLinuxDeviceAllowedlist | MUST | Device cgroup rules are applied in the listed order (last match wins).
lnx.devcg.wildcards | config-linux.md#configLinuxDeviceAllowedlist | MUST* | Unset type means all (`a`); unset major/minor mean any (`*`).
lnx.mem.limit | config-linux.md#configLinuxMemory | MUST* | memory.limit sets the memory limit.
lnx.mem.reservation | config-linux.md#configLinuxMemory | MUST* | memory.reservation sets the soft limit.
lnx.mem.swap | config-linux.md#configLinuxMemory | MUST* | memory.swap sets the memory+swap limit.
lnx.mem.kernel | config-linux.md#configLinuxMemory | MUST* | memory.kernel sets the kernel memory limit, or create fails where it cannot (NOT RECOMMENDED field).
lnx.mem.kernelTCP | config-linux.md#configLinuxMemory | MUST* | memory.kernelTCP sets the kernel TCP buffer limit.
lnx.mem.swappiness | config-linux.md#configLinuxMemory | MUST* | memory.swappiness sets the cgroup's swappiness.
lnx.mem.disableOOMKiller | config-linux.md#configLinuxMemory | MUST* | memory.disableOOMKiller disables the OOM killer for the cgroup.
lnx.mem.useHierarchy | config-linux.md#configLinuxMemory | MUST* | memory.useHierarchy enables hierarchical accounting.
lnx.mem.checkBeforeUpdate | config-linux.md#configLinuxMemory | MUST | With checkBeforeUpdate a new limit below usage is rejected (update only).
lnx.cpu.shares | config-linux.md#configLinuxCPU | MUST* | cpu.shares sets the CPU shares.
lnx.cpu.quota | config-linux.md#configLinuxCPU | MUST* | cpu.quota sets the CFS quota.
lnx.cpu.period | config-linux.md#configLinuxCPU | MUST* | cpu.period sets the CFS period.
lnx.cpu.burst | config-linux.md#configLinuxCPU | MUST* | cpu.burst sets the CFS burst.
lnx.cpu.realtimeRuntime | config-linux.md#configLinuxCPU | MUST* | cpu.realtimeRuntime sets the real-time runtime.
lnx.cpu.realtimePeriod | config-linux.md#configLinuxCPU | MUST* | cpu.realtimePeriod sets the real-time period.
lnx.cpu.cpus | config-linux.md#configLinuxCPU | MUST* | cpu.cpus restricts the CPUs the container runs on.
lnx.cpu.mems | config-linux.md#configLinuxCPU | MUST* | cpu.mems restricts the memory nodes.
lnx.cpu.idle | config-linux.md#configLinuxCPU | MUST* | cpu.idle sets the cgroup's idle flag.
lnx.blkio.weight | config-linux.md#configLinuxBlockIO | MUST* | blockIO.weight sets the cgroup's I/O weight (or create fails where it cannot).
lnx.blkio.leafWeight | config-linux.md#configLinuxBlockIO | MUST* | blockIO.leafWeight sets the leaf weight (or create fails where it cannot).
lnx.blkio.weightDevice | config-linux.md#configLinuxBlockIO | MUST* | blockIO.weightDevice sets per-device weights (or create fails where it cannot).
lnx.blkio.throttleReadBps | config-linux.md#configLinuxBlockIO | MUST* | throttleReadBpsDevice sets read bytes/s limits.
lnx.blkio.throttleWriteBps | config-linux.md#configLinuxBlockIO | MUST* | throttleWriteBpsDevice sets write bytes/s limits.
lnx.blkio.throttleReadIOPS | config-linux.md#configLinuxBlockIO | MUST* | throttleReadIOPSDevice sets read IO/s limits.
lnx.blkio.throttleWriteIOPS | config-linux.md#configLinuxBlockIO | MUST* | throttleWriteIOPSDevice sets write IO/s limits.
lnx.hugetlb.limit | config-linux.md#configLinuxHugePageLimits | MUST* | hugepageLimits set the hugetlb limit (or create fails where it cannot).
lnx.net.classID | config-linux.md#configLinuxNetwork | MUST* | network.classID sets net_cls.classid (or create fails where it cannot).
lnx.net.priorities | config-linux.md#configLinuxNetwork | MUST* | network.priorities set net_prio.ifpriomap (or create fails where it cannot).
lnx.pids.limit | config-linux.md#configLinuxPIDS | MUST* | pids.limit sets the maximum number of tasks (and it is enforced).
lnx.pids.zero | config-linux.md#configLinuxPIDS | SHOULD | A pids limit of 0 is a real limit of 0, not "unlimited".
lnx.rdma.limit | config-linux.md#configLinuxRDMA | MUST* | rdma limits are applied (or create fails where they cannot be).
lnx.rdma.one-of | config-linux.md#configLinuxRDMA | MUST | An rdma entry with neither hcaHandles nor hcaObjects is invalid and rejected.
lnx.unified.controllers | config-linux.md#configLinuxUnified | MUST | The controllers the unified keys need are enabled (v2).
lnx.unified.unknown-written | config-linux.md#configLinuxUnified | MUST | Unified keys unknown to the runtime are still written (v2).
lnx.unified.missing-controller | config-linux.md#configLinuxUnified | MUST | A unified key for a controller that is not present or cannot be enabled is an error.
lnx.unified.conversion | config-linux.md#configLinuxUnified | MUST | v1 settings on a v2 host are converted, or it is an error (v2).
lnx.rdt.no-resctrl | config-linux.md#configLinuxIntelRdt | MUST | intelRdt without a mounted resctrl filesystem is an error.
lnx.rdt.tasks | config-linux.md#configLinuxIntelRdt | MUST | With intelRdt the container pid is written to the CLOS group's tasks file.
lnx.rdt.untouched | config-linux.md#configLinuxIntelRdt | MUST NOT | Without intelRdt no resctrl filesystem is touched.
lnx.rdt.closid-root | config-linux.md#configLinuxIntelRdt | MUST | closID `/` assigns the default CLOS.
lnx.rdt.schema-order | config-linux.md#configLinuxIntelRdt | MUST | l3CacheSchema then memBwSchema then schemata are written to the schemata file.
lnx.rdt.no-schema-no-write | config-linux.md#configLinuxIntelRdt | MUST NOT | Without any schema no schemata file is written.
lnx.rdt.default-closid | config-linux.md#configLinuxIntelRdt | MUST | Without closID the container ID names a new CLOS directory.
lnx.rdt.closid-create | config-linux.md#configLinuxIntelRdt | MUST | A missing closID directory is created when schemas are given; an existing one is compared.
lnx.rdt.closid-preconfigured | config-linux.md#configLinuxIntelRdt | MUST | closID without schemas must name an existing directory, else error.
lnx.rdt.cleanup | config-linux.md#configLinuxIntelRdt | MUST | A CLOS directory the runtime created is removed at delete; others are kept.
lnx.rdt.monitoring | config-linux.md#configLinuxIntelRdt | MUST | enableMonitoring creates mon_groups/<id> and removes it at delete.
lnx.rdt.membw-prefix | config-linux.md#configLinuxIntelRdt | MUST | A memBwSchema not starting with `MB:` or containing newlines is invalid and rejected.
lnx.mempolicy.mode | config-linux.md#configLinuxMemoryPolicy | MUST* | memoryPolicy.mode/nodes set the process NUMA policy.
lnx.mempolicy.flags | config-linux.md#configLinuxMemoryPolicy | MUST* | memoryPolicy.flags are passed to set_mempolicy.
lnx.sysctl | config-linux.md#configLinuxSysctl | MUST* | sysctl values are set for the container.
lnx.seccomp.default-action | config-linux.md#configLinuxSeccomp | MUST* | seccomp.defaultAction applies to syscalls without a rule.
lnx.seccomp.rule | config-linux.md#configLinuxSeccomp | MUST* | A syscalls rule applies its action to its names.
lnx.seccomp.errnoRet | config-linux.md#configLinuxSeccomp | MUST* | errnoRet is the errno returned by SCMP_ACT_ERRNO; EPERM by default.
lnx.seccomp.defaultErrnoRet | config-linux.md#configLinuxSeccomp | MUST* | defaultErrnoRet is the errno of an ERRNO default action.
lnx.seccomp.errno-unsupported | config-linux.md#configLinuxSeccomp | MUST | errnoRet with an action that has no errno is an error.
lnx.seccomp.arch | config-linux.md#configLinuxSeccomp | MUST* | `architectures` adds those ABIs to the filter (i386 syscalls are filtered too).
lnx.seccomp.flags | config-linux.md#configLinuxSeccomp | MUST* | seccomp `flags` are accepted and passed to seccomp(2).
lnx.seccomp.names-nonempty | config-linux.md#configLinuxSeccomp | MUST | A rule with empty `names` is invalid and rejected.
lnx.seccomp.action.kill | config-linux.md#configLinuxSeccomp | MUST* | SCMP_ACT_KILL kills on the syscall.
lnx.seccomp.action.kill-process | config-linux.md#configLinuxSeccomp | MUST* | SCMP_ACT_KILL_PROCESS kills the process.
lnx.seccomp.action.kill-thread | config-linux.md#configLinuxSeccomp | MUST* | SCMP_ACT_KILL_THREAD kills the thread.
lnx.seccomp.action.trap | config-linux.md#configLinuxSeccomp | MUST* | SCMP_ACT_TRAP sends SIGSYS.
lnx.seccomp.action.errno | config-linux.md#configLinuxSeccomp | MUST* | SCMP_ACT_ERRNO fails the syscall with an errno.
lnx.seccomp.action.trace | config-linux.md#configLinuxSeccomp | MUST* | SCMP_ACT_TRACE without a tracer fails the syscall with ENOSYS.
lnx.seccomp.action.allow | config-linux.md#configLinuxSeccomp | MUST* | SCMP_ACT_ALLOW allows the syscall.
lnx.seccomp.action.log | config-linux.md#configLinuxSeccomp | MUST* | SCMP_ACT_LOG allows the syscall (and logs it).
lnx.seccomp.action.notify | config-linux.md#configLinuxSeccomp | MUST* | SCMP_ACT_NOTIFY hands the syscall to the agent at listenerPath.
lnx.seccomp.op.ne | config-linux.md#configLinuxSeccomp | MUST* | Argument operator SCMP_CMP_NE.
lnx.seccomp.op.lt | config-linux.md#configLinuxSeccomp | MUST* | Argument operator SCMP_CMP_LT.
lnx.seccomp.op.le | config-linux.md#configLinuxSeccomp | MUST* | Argument operator SCMP_CMP_LE.
lnx.seccomp.op.eq | config-linux.md#configLinuxSeccomp | MUST* | Argument operator SCMP_CMP_EQ.
lnx.seccomp.op.ge | config-linux.md#configLinuxSeccomp | MUST* | Argument operator SCMP_CMP_GE.
lnx.seccomp.op.gt | config-linux.md#configLinuxSeccomp | MUST* | Argument operator SCMP_CMP_GT.
lnx.seccomp.op.masked-eq | config-linux.md#configLinuxSeccomp | MUST* | Argument operator SCMP_CMP_MASKED_EQ.
lnx.seccomp.listener.send | config-linux.md#configLinuxSeccomp | MUST | With SCMP_ACT_NOTIFY the container process state is sent to listenerPath (AF_UNIX, SOCK_STREAM).
lnx.seccomp.listener.one-per-conn | config-linux.md#configLinuxSeccomp | MUST | Exactly one state per connection, and the connection is closed after it.
lnx.seccomp.listener.fail | config-linux.md#configLinuxSeccomp | MUST | If sending to listenerPath fails, it is an error.
lnx.seccomp.listener.metadata-needs-path | config-linux.md#configLinuxSeccomp | MUST NOT | listenerMetadata without listenerPath is invalid and rejected.
lnx.seccomp.state.format | config-linux.md#containerprocessstate | MUST | The process state is JSON (ociVersion, fds, pid, metadata, state) with the fds sent by SCM_RIGHTS.
lnx.seccomp.state.fds-first | config-linux.md#containerprocessstate | MUST | The file descriptors come with the first sendmsg.
lnx.rootfsPropagation.shared | config-linux.md#configLinuxRootfsMountPropagation | MUST* | rootfsPropagation `shared` makes / a shared mount.
lnx.rootfsPropagation.slave | config-linux.md#configLinuxRootfsMountPropagation | MUST* | rootfsPropagation `slave` makes / a slave mount.
lnx.rootfsPropagation.private | config-linux.md#configLinuxRootfsMountPropagation | MUST* | rootfsPropagation `private` makes / private.
lnx.rootfsPropagation.unbindable | config-linux.md#configLinuxRootfsMountPropagation | MUST* | rootfsPropagation `unbindable` makes / unbindable.
lnx.maskedPaths | config-linux.md#configLinuxMaskedPaths | MUST* | maskedPaths (files and directories) cannot be read.
lnx.maskedPaths.absolute | config-linux.md#configLinuxMaskedPaths | MUST | A relative masked path is invalid and rejected.
lnx.readonlyPaths | config-linux.md#configLinuxReadonlyPaths | MUST* | readonlyPaths are read-only.
lnx.readonlyPaths.absolute | config-linux.md#configLinuxReadonlyPaths | MUST | A relative read-only path is invalid and rejected.
lnx.mountLabel | config-linux.md#configLinuxMountLabel | MUST* | mountLabel sets the SELinux context of the container's mounts.
lnx.personality | config-linux.md#configLinuxPersonality | MUST* | personality.domain LINUX32 makes uname report a 32-bit machine.
# ------------------------------------------------------------ features.md
feat.compile-time | features.md#features | SHOULD | The features structure is fixed at build time, not probed from the host.
feat.ociVersionMin | features.md#featuresSpecificationVersion | REQUIRED | `ociVersionMin` is present.
feat.ociVersionMin.accepted | features.md#featuresSpecificationVersion | MUST | A config whose ociVersion is ociVersionMin is accepted.
feat.ociVersionMax | features.md#featuresSpecificationVersion | REQUIRED | `ociVersionMax` is present.
feat.ociVersionMax.accepted | features.md#featuresSpecificationVersion | MUST | A config whose ociVersion is ociVersionMax is accepted.
feat.ociVersionMax.not-less | features.md#featuresSpecificationVersion | MUST NOT | ociVersionMax is not less than ociVersionMin.
feat.no-unknown-props | features.md#featuresSpecificationVersion | MUST NOT | The structure has no properties undefined in its ociVersionMax.
feat.null-not-empty | features.md#features | MUST NOT | null is not used where an empty value is meant (ociVersionMin/Max are never null).
feat.hooks | features.md#featuresHooks | MUST | Every hook name listed is supported in config.json.
feat.mountOptions | features.md#featuresMountOptions | MUST | Every mount option listed is recognized in config.json.
feat.mountOptions.no-fs-specific | features.md#featuresMountOptions | SHOULD NOT | mountOptions lists no filesystem-specific (data) options.
feat.annotations | features.md#featuresAnnotations | MUST | annotations is a map of non-empty string keys to string values.
# ------------------------------------------------------------ features-linux.md
featl.namespaces | features-linux.md#linuxFeaturesNamespaces | MUST | Every namespace listed is recognized as linux.namespaces[].type.
featl.capabilities | features-linux.md#linuxFeaturesCapabilities | MUST | Every capability listed is recognized in process.capabilities.
featl.seccomp.actions | features-linux.md#linuxFeaturesSeccomp | MUST | Every seccomp action listed is recognized.
featl.seccomp.operators | features-linux.md#linuxFeaturesSeccomp | MUST | Every seccomp operator listed is recognized.
featl.seccomp.archs | features-linux.md#linuxFeaturesSeccomp | MUST | Every seccomp architecture listed is recognized.
featl.seccomp.knownFlags | features-linux.md#linuxFeaturesSeccomp | MUST | Every seccomp flag in knownFlags is recognized.
featl.seccomp.supportedFlags | features-linux.md#linuxFeaturesSeccomp | MUST | Every seccomp flag in supportedFlags is recognized and works.
featl.memoryPolicy.modes | features-linux.md#linuxFeaturesMemoryPolicy | MUST | Every memory policy mode listed is recognized.
featl.memoryPolicy.flags | features-linux.md#linuxFeaturesMemoryPolicy | MUST | Every memory policy flag listed is recognized.
featl.mountExtensions.idmap | features-linux.md#linuxFeaturesMountExtensions | MUST | A runtime that acts on mount uidMappings/gidMappings says idmap.enabled: true.
"""

LEVEL_GROUPS = {
    "MUST": "MUST", "MUST NOT": "MUST", "REQUIRED": "REQUIRED",
    "SHOULD": "SHOULD", "SHOULD NOT": "SHOULD", "MUST*": "MUST*",
}
LEVEL_ORDER = ["MUST", "REQUIRED", "MUST*", "SHOULD"]


class Req:
    __slots__ = ("id", "where", "level", "text")

    def __init__(self, id, where, level, text):
        self.id, self.where, self.level, self.text = id, where, level, text

    @property
    def group(self):
        return LEVEL_GROUPS[self.level]

    @property
    def doc(self):
        return self.where.split("#")[0]


def _parse():
    reqs = []
    seen = set()
    for line in _TABLE.strip().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) != 4:
            raise ValueError(f"bad catalog line: {line}")
        rid, where, level, text = parts
        if rid in seen:
            raise ValueError(f"duplicate requirement id {rid}")
        if level not in LEVEL_GROUPS:
            raise ValueError(f"bad level {level} for {rid}")
        seen.add(rid)
        reqs.append(Req(rid, where, level, text))
    return reqs


REQS = _parse()
BY_ID = {r.id: r for r in REQS}
