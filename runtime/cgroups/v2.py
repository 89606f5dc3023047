"""cgroup v2 driver: one directory in the unified hierarchy.

v1-style values in linux.resources are converted as crun documents them (see
``convert``); ``unified`` keys are written as given.  Devices are confined by an
eBPF program (``devices.program``) attached to the directory.
"""

import errno
import os
import signal

from . import ROOT, CgroupError, Manager
from . import fs
from . import convert
from .fs import WriteFailed

_RES = "linux.resources"


class CgroupV2(Manager):
    version = 2

    def __init__(self, path, root=ROOT, rootless=False, explicit=True, created=()):
        super().__init__(root=root, rootless=rootless, explicit=explicit, created=created)
        self.path = path
        self._controllers = None

    @classmethod
    def load(cls, saved):
        return cls(saved["path"], root=saved.get("root", ROOT),
                   rootless=saved.get("rootless", False),
                   explicit=saved.get("explicit", True), created=saved.get("created", ()))

    def save(self):
        return {"version": 2, "root": self.root, "path": self.path,
                "created": list(self.created), "rootless": self.rootless,
                "explicit": self.explicit}

    def paths(self):
        return {"": self.path}

    def procs_dir(self):
        return self.path

    # -- apply ---------------------------------------------------------------------

    def apply(self, pid, resources=None):
        root = self.root.rstrip("/")
        if not (self.path == root or self.path.startswith(root + "/")):
            raise CgroupError(f"cgroup: invalid cgroup path {self.path}")
        parts = [p for p in self.path[len(root):].split("/") if p]
        current = root
        try:
            for i, part in enumerate(parts):
                self._enable_all(current)
                current += "/" + part
                made = []
                fs.make_dirs(current, made)
                self._record(made)
                self._check_type(current, resources)
            if pid is not None:
                fs.add_pid(self.path, pid)
        except CgroupError as e:
            if self.rootless and not self.explicit and ("permission denied" in str(e) or
                                                        "read-only" in str(e)):
                return
            raise

    def _enable_all(self, path):
        """Enable in ``path``'s subtree_control every controller it offers that
        is not enabled yet (runc enables all of them on the way down)."""
        try:
            offered = fs.read(path, "cgroup.controllers").split()
            enabled = fs.read(path, "cgroup.subtree_control").split()
        except OSError as e:
            raise CgroupError(f"cgroup: read {path}: {os.strerror(e.errno).lower()}") from None
        missing = [c for c in offered if c not in enabled]
        if not missing:
            return
        try:
            fs.write(path, "cgroup.subtree_control", " ".join("+" + c for c in missing))
        except WriteFailed:
            # one by one: a parent that holds processes refuses domain controllers,
            # and what cannot be enabled is reported by set() for its resource
            for c in missing:
                try:
                    fs.write(path, "cgroup.subtree_control", "+" + c)
                except WriteFailed:
                    continue

    def _check_type(self, path, resources):
        try:
            kind = fs.read(path, "cgroup.type").strip()
        except OSError:
            return
        domain = resources is not None and convert.uses_domain_controllers(resources)
        if kind == "domain invalid":
            if domain:
                raise CgroupError(f"cannot enter cgroupv2 {path!r} with domain controllers"
                                  " -- it is in an invalid state")
            try:
                fs.write(path, "cgroup.type", "threaded")
            except WriteFailed:
                pass
        elif kind in ("domain threaded", "threaded") and domain:
            raise CgroupError(f"cannot enter cgroupv2 {path!r} with domain controllers -- "
                              f"it is in {kind} mode")

    # -- resources -----------------------------------------------------------------

    def controllers(self):
        if self._controllers is None:
            try:
                self._controllers = set(fs.read(self.path, "cgroup.controllers").split())
            except OSError:
                self._controllers = set()
        return self._controllers

    def _need(self, controller, field):
        if controller not in self.controllers():
            raise CgroupError(f"cannot set {field}: the {controller} cgroup controller is "
                              f"not available in {self.path}")

    def _write(self, name, value, field, controller=None):
        if controller:
            self._need(controller, field)
        try:
            fs.write(self.path, name, value)
        except WriteFailed as e:
            raise _set_error(field, e) from None

    def set(self, resources):
        self._update(resources, create=True)

    def update(self, resources):
        self._update(resources, create=False)

    def _update(self, resources, create):
        self.warnings = []
        self._controllers = None
        if not resources:
            return
        if resources.get("pids") is not None:
            limit = resources["pids"].get("limit")
            if limit is not None:
                self._write("pids.max", "max" if limit < 0 else limit,
                            f"{_RES}.pids.limit", "pids")
        if resources.get("memory") is not None:
            self._set_memory(resources["memory"], create)
        if resources.get("blockIO") is not None:
            self._set_io(resources["blockIO"])
        cpu = resources.get("cpu") or {}
        if cpu:
            self._set_cpu(cpu, create)
        if resources.get("devices") is not None:
            self._set_devices(resources["devices"])
        for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            if cpu.get(key):
                self._write(name, cpu[key], f"{_RES}.cpu.{key}", "cpuset")
        if resources.get("hugepageLimits"):
            self._set_hugetlb(resources["hugepageLimits"])
        if resources.get("rdma"):
            from .v1 import rdma_line

            for dev, lim in resources["rdma"].items():
                self._write("rdma.max", rdma_line(dev, lim), f"{_RES}.rdma.{dev}", "rdma")
        net = resources.get("network")
        if net and (net.get("classID") is not None or net.get("priorities")):
            raise CgroupError(f"cannot set {_RES}.network: net_cls and net_prio do not "
                              "exist on cgroup v2")
        if resources.get("unified"):
            self._set_unified(resources["unified"])

    def _set_memory(self, mem, create):
        field = f"{_RES}.memory"
        limit = mem.get("limit") or 0
        swap = mem.get("swap") or 0
        reservation = mem.get("reservation") or 0
        if limit or swap or reservation:
            self._need("memory", field)
        base = limit
        if swap and not limit and not create:
            # an update of swap alone keeps the current memory limit
            base = fs.read_int(self.path, "memory.max")
        try:
            swap_v2 = convert.memory_swap(swap, base)
        except ValueError as e:
            raise CgroupError(f"cannot set {field}.swap: {e}") from None
        if mem.get("checkBeforeUpdate") and limit > 0 and not create:
            usage = fs.read_int(self.path, "memory.current")
            if usage > limit:
                raise CgroupError(f"rejecting memory limit {limit} below current usage "
                                  f"{usage}")
        if swap_v2 is not None:
            if fs.exists(self.path, "memory.swap.max"):
                self._write("memory.swap.max", convert.max_str(swap_v2), f"{field}.swap")
            elif swap_v2 not in (-1, 0):
                raise CgroupError(f"cannot set {field}.swap: swap accounting is not enabled "
                                  "on this host (no memory.swap.max)")
        if limit:
            self._write("memory.max", convert.max_str(limit), f"{field}.limit")
        if reservation:
            self._write("memory.low", convert.max_str(reservation), f"{field}.reservation")
        if mem.get("kernel") is not None or mem.get("kernelTCP") is not None:
            self.warnings.append("Kernel memory settings are ignored and will be removed")
        swappiness = mem.get("swappiness")
        if swappiness is not None and swappiness != -1:
            self.warnings.append(f"{field}.swappiness is not supported on cgroup v2 and "
                                 "was ignored")
        if mem.get("disableOOMKiller"):
            self.warnings.append(f"{field}.disableOOMKiller is not supported on cgroup v2 "
                                 "and was ignored")
        if mem.get("useHierarchy") is False:
            self.warnings.append(f"{field}.useHierarchy: cgroup v2 accounting is always "
                                 "hierarchical")

    def _set_cpu(self, cpu, create):
        field = f"{_RES}.cpu"
        if cpu.get("shares"):
            self._write("cpu.weight", convert.cpu_weight(cpu["shares"]), f"{field}.shares",
                        "cpu")
        quota = cpu.get("quota") or 0
        period = cpu.get("period") or 0
        if quota or period:
            self._need("cpu", field)
            if not create and (not quota or not period):
                cur_quota, _, cur_period = fs.read(self.path, "cpu.max").strip().partition(" ")
                quota = quota or (-1 if cur_quota == "max" else int(cur_quota))
                period = period or int(cur_period)
            self._write("cpu.max", convert.cpu_max(quota, period), f"{field}.quota")
        if cpu.get("burst") is not None:
            self._write("cpu.max.burst", cpu["burst"], f"{field}.burst", "cpu")
        if cpu.get("idle") is not None:
            self._write("cpu.idle", cpu["idle"], f"{field}.idle", "cpu")
        if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
            raise CgroupError(f"cannot set {field}.realtimeRuntime/realtimePeriod: realtime "
                              "cpu bandwidth does not exist on cgroup v2")

    def _set_io(self, blk):
        field = f"{_RES}.blockIO"
        if blk.get("leafWeight") or any(wd.get("leafWeight") for wd in
                                        blk.get("weightDevice") or ()):
            raise CgroupError(f"cannot set {field}.leafWeight: leaf weights do not exist on "
                              "cgroup v2")
        weight = blk.get("weight")
        devices = [wd for wd in blk.get("weightDevice") or () if wd.get("weight")]
        if weight or devices:
            self._need("io", field)
            bfq = fs.exists(self.path, "io.bfq.weight")
            if weight:
                if bfq:
                    self._write("io.bfq.weight", weight, f"{field}.weight")
                else:
                    self._write("io.weight", convert.io_weight(weight), f"{field}.weight")
            for i, wd in enumerate(devices):
                dev = f"{wd['major']}:{wd['minor']}"
                if bfq:
                    self._write("io.bfq.weight", f"{dev} {wd['weight']}",
                                f"{field}.weightDevice[{i}]")
                else:
                    self._write("io.weight", f"{dev} {convert.io_weight(wd['weight'])}",
                                f"{field}.weightDevice[{i}]")
        for key, name in convert.IO_MAX_KEYS:
            for i, td in enumerate(blk.get(key) or ()):
                self._write("io.max", convert.io_max_line(td, name), f"{field}.{key}[{i}]",
                            "io")

    def _set_hugetlb(self, limits):
        field = f"{_RES}.hugepageLimits"
        self._need("hugetlb", field)
        sizes = fs.hugepage_sizes()
        for i, hl in enumerate(limits):
            size = hl.get("pageSize", "")
            if size not in sizes:
                raise CgroupError(f"cannot set {field}[{i}]: invalid hugepage size "
                                  f"{size!r} (this host has {', '.join(sorted(sizes)) or 'none'})")
            self._write(f"hugetlb.{size}.max", hl["limit"], f"{field}[{i}]")
            if fs.exists(self.path, f"hugetlb.{size}.rsvd.max"):
                self._write(f"hugetlb.{size}.rsvd.max", hl["limit"], f"{field}[{i}]")

    def _set_devices(self, rules):
        from .devices import DeviceState, normalize, program
        from .ebpf import install

        state = DeviceState.from_rules(normalize(rules))
        try:
            install(self.path, program(state))
        except CgroupError:
            if not self.rootless:
                raise
        except Exception as e:  # SysError from bpf(2)
            if not self.rootless:
                raise CgroupError(f"cannot set {_RES}.devices: {e}") from None

    def _set_unified(self, unified):
        for key, value in unified.items():
            field = f"{_RES}.unified[{key!r}]"
            if "/" in key:
                raise CgroupError(f"unified resource {key!r} must be a file name (no slashes)")
            try:
                fs.write(self.path, key, value)
            except WriteFailed as e:
                if e.errno in (errno.EPERM, errno.EACCES, errno.ENOENT):
                    ctrl, dot, _ = key.partition(".")
                    if not dot:
                        raise CgroupError(f"unified resource {key!r} must be in the form "
                                          "CONTROLLER.PARAMETER") from None
                    if ctrl != "cgroup" and ctrl not in self.controllers():
                        raise CgroupError(f"unified resource {key!r} can't be set: controller "
                                          f"{ctrl!r} not available") from None
                raise CgroupError(f"unable to set unified resource {key!r}: {e}") from None
            del field

    # -- freezer -------------------------------------------------------------------

    def freeze(self):
        self._freeze("1")

    def thaw(self):
        self._freeze("0")

    def _freeze(self, value):
        if not fs.exists(self.path, "cgroup.freeze"):
            raise CgroupError("cannot toggle freezer: cgroups not configured for container")
        try:
            fs.write(self.path, "cgroup.freeze", value)
        except WriteFailed as e:
            raise CgroupError(f"cgroup: {'freeze' if value == '1' else 'thaw'}: {e}") from None
        want = "frozen " + value
        fs.wait_until(lambda: want in fs.read(self.path, "cgroup.events").splitlines(), 5,
                      f"{self.path} to {'freeze' if value == '1' else 'thaw'}")

    def frozen(self):
        try:
            return fs.read(self.path, "cgroup.freeze").strip() == "1"
        except OSError:
            return False

    def signal_all(self, sig):
        if sig == signal.SIGKILL and fs.exists(self.path, "cgroup.kill"):
            try:
                fs.write(self.path, "cgroup.kill", "1")
            except WriteFailed:
                pass
            else:
                # as on v1, a killed paused container does not stay frozen
                if self.frozen():
                    self.thaw()
                return
        super().signal_all(sig)

    # -- monitoring ----------------------------------------------------------------

    def stats(self):
        from .stats import v2_stats

        return v2_stats(self.path)

    def oom_kill_count(self):
        return fs.read_keyed(self.path, "memory.events").get("oom_kill", 0)

    def oom_events(self):
        from .stats import OOMNotifierV2

        return OOMNotifierV2(self.path)


def _set_error(field, err):
    if err.errno == errno.ENOENT:
        return CgroupError(f"cannot set {field}: {err.filename} does not exist (not "
                           "supported by this kernel or controller)")
    return CgroupError(f"cannot set {field}: {err}")
