"""cgroup v1 driver: one directory per mounted controller.

On a hybrid host the cgroup2 mount (``/sys/fs/cgroup/unified``) is joined as the
"" controller, as runc does; when the v1 hugetlb controller is not mounted but the
cgroup2 mount offers it, hugepageLimits go there (enabling ``hugetlb`` in the
ancestors' ``cgroup.subtree_control`` only then).
"""

import errno
import os
import time

from . import ROOT, CgroupError, Manager
from . import fs
from .fs import WriteFailed

_RES = "linux.resources"


class CgroupV1(Manager):
    version = 1

    def __init__(self, paths, root=ROOT, rootless=False, explicit=True, created=()):
        super().__init__(root=root, rootless=rootless, explicit=explicit, created=created)
        self._paths = dict(paths)

    @classmethod
    def load(cls, saved):
        return cls(saved["paths"], root=saved.get("root", ROOT),
                   rootless=saved.get("rootless", False),
                   explicit=saved.get("explicit", True), created=saved.get("created", ()))

    def save(self):
        return {"version": 1, "root": self.root, "paths": dict(self._paths),
                "created": list(self.created), "rootless": self.rootless,
                "explicit": self.explicit}

    def paths(self):
        return dict(self._paths)

    def procs_dir(self):
        for ctrl in ("devices", "memory", "pids", "freezer", "cpu"):
            if ctrl in self._paths:
                return self._paths[ctrl]
        return next(iter(self._paths.values()), None)

    # -- apply ---------------------------------------------------------------------

    def apply(self, pid):
        done = set()
        for ctrl, path in list(self._paths.items()):
            if path in done:
                continue
            done.add(path)
            try:
                made = []
                fs.make_dirs(path, made)
                self._record(made)
                if ctrl == "cpuset":
                    self._fill_cpuset(path)
                if pid is not None:
                    fs.add_pid(path, pid)
            except CgroupError as e:
                if self.rootless and not self.explicit and _permission(e):
                    # runc: without a cgroupsPath a rootless container runs without
                    # the controllers it may not use; set() then names them
                    del self._paths[ctrl]
                    continue
                raise

    def _fill_cpuset(self, leaf):
        """A cpuset cgroup starts with no cpus and mems, and no task can join it
        until they are set: copy them from the parent into every directory from the
        hierarchy's root down to ``leaf`` that has none (made now, or left empty by
        an earlier create that died, as runc's cpusetEnsureParent does)."""
        chain = []
        d = leaf
        # up to (not including) the hierarchy's root, the last one with a parent
        # that has cpuset files
        while os.path.exists(d.rsplit("/", 1)[0] + "/cpuset.cpus"):
            chain.append(d)
            d = d.rsplit("/", 1)[0]
        for d in reversed(chain):
            parent = d.rsplit("/", 1)[0]
            for name in ("cpuset.cpus", "cpuset.mems"):
                try:
                    if fs.read(d, name).strip():
                        continue
                    value = fs.read(parent, name).strip()
                    if value:
                        fs.write(d, name, value)
                except (OSError, WriteFailed) as e:
                    raise CgroupError(f"cgroup: copy {name} from {parent} to {d}: "
                                      f"{os.strerror(e.errno).lower()}") from None

    # -- resources -----------------------------------------------------------------

    def _dir(self, ctrl, field):
        path = self._paths.get(ctrl)
        if path is None:
            if self.rootless:
                raise CgroupError(f"cannot set {ctrl} limit: container could not join or "
                                  "create cgroup")
            raise CgroupError(f"cannot set {field}: the {ctrl} cgroup controller is not "
                              "mounted on this host")
        return path

    def _write(self, ctrl, name, value, field):
        path = self._dir(ctrl, field)
        try:
            fs.write(path, name, value)
        except WriteFailed as e:
            raise _set_error(field, e) from None

    def set(self, resources):
        self.warnings = []
        if not resources:
            return
        if resources.get("unified"):
            raise CgroupError("invalid configuration: cannot use unified on cgroup v1")
        cpu = resources.get("cpu") or {}
        self._set_cpuset(cpu)
        if resources.get("devices") is not None:
            self._set_devices(resources["devices"])
        if resources.get("memory") is not None:
            self._set_memory(resources["memory"])
        self._set_cpu(cpu)
        if resources.get("pids") is not None:
            self._set_pids(resources["pids"])
        if resources.get("blockIO") is not None:
            self._set_blkio(resources["blockIO"])
        if resources.get("hugepageLimits"):
            self._set_hugetlb(resources["hugepageLimits"])
        if resources.get("network") is not None:
            self._set_network(resources["network"])
        if resources.get("rdma"):
            self._set_rdma(resources["rdma"])

    def _set_cpuset(self, cpu):
        for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            value = cpu.get(key)
            if value:
                self._write("cpuset", name, value, f"{_RES}.cpu.{key}")

    def _set_devices(self, rules):
        from .devices import DeviceState, normalize

        field = f"{_RES}.devices"
        target = DeviceState.from_rules(normalize(rules))
        path = self._dir("devices", field)
        try:
            current = DeviceState.from_list(fs.read(path, "devices.list"))
        except OSError as e:
            raise CgroupError(f"cannot set {field}: read {path}/devices.list: "
                              f"{os.strerror(e.errno).lower()}") from None
        for name, line in current.transition(target):
            try:
                fs.write(path, name, line)
            except WriteFailed as e:
                if self.rootless:
                    return
                raise _set_error(field, e) from None

    def _set_memory(self, mem):
        field = f"{_RES}.memory"
        path = self._dir("memory", field)
        limit = mem.get("limit") or 0
        swap = mem.get("swap") or 0
        has_memsw = fs.exists(path, "memory.memsw.limit_in_bytes")
        if limit == -1 and swap == 0 and has_memsw:
            swap = -1
        if swap and not has_memsw:
            raise CgroupError(f"cannot set {field}.swap: swap accounting is not enabled "
                              "on this host (no memory.memsw.limit_in_bytes)")
        # memory+swap may never be below memory: write in the order that keeps
        # that true on the way from the current values to the new ones
        swap_first = False
        if limit and swap:
            current = fs.read_int(path, "memory.limit_in_bytes")
            swap_first = swap == -1 or current < swap
        if swap_first:
            self._write("memory", "memory.memsw.limit_in_bytes", swap, f"{field}.swap")
        if limit:
            try:
                fs.write(path, "memory.limit_in_bytes", limit)
            except WriteFailed as e:
                if e.errno != errno.EBUSY:
                    raise _set_error(f"{field}.limit", e) from None
                usage = fs.read_int(path, "memory.usage_in_bytes")
                peak = fs.read_int(path, "memory.max_usage_in_bytes")
                raise CgroupError(f"unable to set memory limit to {limit} (current usage: "
                                  f"{usage}, peak usage: {peak})") from None
        if swap and not swap_first:
            self._write("memory", "memory.memsw.limit_in_bytes", swap, f"{field}.swap")
        if mem.get("reservation"):
            self._write("memory", "memory.soft_limit_in_bytes", mem["reservation"],
                        f"{field}.reservation")
        if mem.get("kernel") is not None:
            self.warnings.append("Kernel memory settings are ignored and will be removed")
        if mem.get("kernelTCP") is not None:
            # NOT RECOMMENDED by the spec, but still a limit the v1 controller has.
            if fs.exists(path, "memory.kmem.tcp.limit_in_bytes"):
                self._write("memory", "memory.kmem.tcp.limit_in_bytes", mem["kernelTCP"],
                            f"{field}.kernelTCP")
            else:
                self.warnings.append("memory.kernelTCP is ignored: this kernel has no "
                                     "memory.kmem.tcp.limit_in_bytes")
        if mem.get("disableOOMKiller") is not None:
            self._write("memory", "memory.oom_control",
                        "1" if mem["disableOOMKiller"] else "0", f"{field}.disableOOMKiller")
        swappiness = mem.get("swappiness")
        if swappiness is not None and swappiness != -1:
            if not 0 <= swappiness <= 100:
                raise CgroupError(f"invalid memory swappiness value: {swappiness} (valid "
                                  "range is 0-100)")
            self._write("memory", "memory.swappiness", swappiness, f"{field}.swappiness")
        if mem.get("useHierarchy") is not None:
            want = "1" if mem["useHierarchy"] else "0"
            if fs.read(path, "memory.use_hierarchy").strip() != want:
                self._write("memory", "memory.use_hierarchy", want, f"{field}.useHierarchy")

    def _set_cpu(self, cpu):
        field = f"{_RES}.cpu"
        shares = cpu.get("shares")
        if shares:
            self._write("cpu", "cpu.shares", shares, f"{field}.shares")
            got = fs.read_int(self._paths["cpu"], "cpu.shares")
            if got < shares:
                raise CgroupError(f"the maximum allowed cpu-shares is {got}")
            if got > shares:
                raise CgroupError(f"the minimum allowed cpu-shares is {got}")
        period = cpu.get("period") or 0
        quota = cpu.get("quota") or 0
        period_pending = False
        if period:
            try:
                self._write("cpu", "cpu.cfs_period_us", period, f"{field}.period")
            except CgroupError:
                # a shorter period can be refused while the old quota/new period
                # exceeds the parent's bandwidth: retry after the quota
                if not quota:
                    raise
                period_pending = True
        if quota:
            self._write("cpu", "cpu.cfs_quota_us", quota, f"{field}.quota")
            if period_pending:
                self._write("cpu", "cpu.cfs_period_us", period, f"{field}.period")
        if cpu.get("burst") is not None:
            self._write("cpu", "cpu.cfs_burst_us", cpu["burst"], f"{field}.burst")
        if cpu.get("realtimePeriod"):
            self._write("cpu", "cpu.rt_period_us", cpu["realtimePeriod"],
                        f"{field}.realtimePeriod")
        if cpu.get("realtimeRuntime"):
            self._write("cpu", "cpu.rt_runtime_us", cpu["realtimeRuntime"],
                        f"{field}.realtimeRuntime")
        if cpu.get("idle") is not None:
            self._write("cpu", "cpu.idle", cpu["idle"], f"{field}.idle")

    def _set_pids(self, pids):
        limit = pids.get("limit")
        if limit is not None:
            self._write("pids", "pids.max", "max" if limit < 0 else limit,
                        f"{_RES}.pids.limit")

    def _set_blkio(self, blk):
        field = f"{_RES}.blockIO"
        path = self._dir("blkio", field)
        bfq = not fs.exists(path, "blkio.weight") and fs.exists(path, "blkio.bfq.weight")
        weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
        if blk.get("weight"):
            self._write("blkio", weight_file, blk["weight"], f"{field}.weight")
        if blk.get("leafWeight"):
            self._write("blkio", "blkio.leaf_weight", blk["leafWeight"], f"{field}.leafWeight")
        for i, wd in enumerate(blk.get("weightDevice") or ()):
            dev = f"{wd['major']}:{wd['minor']}"
            if wd.get("weight"):
                self._write("blkio", weight_file + "_device", f"{dev} {wd['weight']}",
                            f"{field}.weightDevice[{i}].weight")
            if wd.get("leafWeight"):
                self._write("blkio", "blkio.leaf_weight_device", f"{dev} {wd['leafWeight']}",
                            f"{field}.weightDevice[{i}].leafWeight")
        for key, name in THROTTLE_FILES:
            for i, td in enumerate(blk.get(key) or ()):
                self._write("blkio", name, f"{td['major']}:{td['minor']} {td['rate']}",
                            f"{field}.{key}[{i}]")

    def _set_hugetlb(self, limits):
        field = f"{_RES}.hugepageLimits"
        sizes = fs.hugepage_sizes()
        if "hugetlb" in self._paths:
            ctrl, limit_file, rsvd_file = "hugetlb", "limit_in_bytes", "rsvd.limit_in_bytes"
        else:
            ctrl, limit_file, rsvd_file = "", "max", "rsvd.max"
            self._hybrid_enable("hugetlb", field)
        path = self._paths[ctrl]
        for i, hl in enumerate(limits):
            size = hl.get("pageSize", "")
            if size not in sizes:
                raise CgroupError(f"cannot set {field}[{i}]: invalid hugepage size "
                                  f"{size!r} (this host has {', '.join(sorted(sizes)) or 'none'})")
            self._write(ctrl, f"hugetlb.{size}.{limit_file}", hl["limit"], f"{field}[{i}]")
            if fs.exists(path, f"hugetlb.{size}.{rsvd_file}"):
                self._write(ctrl, f"hugetlb.{size}.{rsvd_file}", hl["limit"], f"{field}[{i}]")

    def _hybrid_enable(self, controller, field):
        """Enable a controller of the hybrid cgroup2 mount down to our directory."""
        leaf = self._paths.get("")
        hybrid = self.root + "/unified"
        if leaf is None or controller not in fs.read(hybrid, "cgroup.controllers").split():
            raise CgroupError(f"cannot set {field}: the {controller} cgroup controller is "
                              "not available on this host")
        parts = leaf[len(hybrid):].strip("/").split("/")
        current = hybrid
        for part in parts:
            if controller not in fs.read(current, "cgroup.subtree_control").split():
                try:
                    fs.write(current, "cgroup.subtree_control", "+" + controller)
                except WriteFailed as e:
                    raise _set_error(field, e) from None
            current += "/" + part

    def _set_network(self, net):
        field = f"{_RES}.network"
        if net.get("classID") is not None:
            self._write("net_cls", "net_cls.classid", net["classID"], f"{field}.classID")
        for i, prio in enumerate(net.get("priorities") or ()):
            self._write("net_prio", "net_prio.ifpriomap", f"{prio['name']} {prio['priority']}",
                        f"{field}.priorities[{i}]")

    def _set_rdma(self, rdma):
        for dev, lim in rdma.items():
            self._write("rdma", "rdma.max", rdma_line(dev, lim), f"{_RES}.rdma.{dev}")

    # -- freezer -------------------------------------------------------------------

    def _freezer(self):
        path = self._paths.get("freezer")
        if path is None:
            raise CgroupError("cannot toggle freezer: cgroups not configured for container")
        return path

    def freeze(self):
        try:
            self._freeze(self._freezer())
        except WriteFailed as e:
            raise CgroupError(f"cgroup: freeze: {e}") from None

    def _freeze(self, path):
        deadline = time.monotonic() + 5
        tries = 0
        while True:
            tries += 1
            if tries % 50 == 0:
                # a task stuck in FREEZING (e.g. in vfork) is kicked by a thaw
                fs.write(path, "freezer.state", "THAWED")
                time.sleep(0.01)
            fs.write(path, "freezer.state", "FROZEN")
            state = fs.read(path, "freezer.state").strip()
            if state == "FROZEN":
                return
            if time.monotonic() > deadline:
                fs.write(path, "freezer.state", "THAWED")
                raise CgroupError(f"unable to freeze {path}: still {state}")
            time.sleep(0.0001 * min(tries, 100))

    def thaw(self):
        path = self._freezer()
        try:
            fs.write(path, "freezer.state", "THAWED")
        except WriteFailed as e:
            raise CgroupError(f"cgroup: thaw: {e}") from None
        fs.wait_until(lambda: fs.read(path, "freezer.state").strip() == "THAWED", 5,
                      f"{path} to thaw")

    def frozen(self):
        path = self._paths.get("freezer")
        if path is None:
            return False
        try:
            state = fs.read(path, "freezer.state").strip()
            if state == "FREEZING":
                return fs.read(path, "freezer.self_freezing").strip() == "1"
        except OSError as e:
            if e.errno in fs.GONE:
                return False
            raise
        return state == "FROZEN"

    # -- monitoring ----------------------------------------------------------------

    def stats(self):
        from .stats import v1_stats

        return v1_stats(self._paths)

    def oom_kill_count(self):
        path = self._paths.get("memory")
        if path is None:
            return 0
        return fs.read_keyed(path, "memory.oom_control").get("oom_kill", 0)

    def oom_events(self):
        from .stats import OOMNotifierV1

        path = self._paths.get("memory")
        if path is None:
            raise CgroupError("cgroup: memory controller missing")
        return OOMNotifierV1(path)


THROTTLE_FILES = (
    ("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
    ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
    ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
    ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"),
)


def rdma_line(dev, lim):
    handles = lim.get("hcaHandles")
    objects = lim.get("hcaObjects")
    return (f"{dev} hca_handle={'max' if handles is None else handles} "
            f"hca_object={'max' if objects is None else objects}")


def _permission(err):
    text = str(err)
    return any(w in text for w in ("permission denied", "operation not permitted",
                                   "read-only file system"))


def _set_error(field, err):
    if err.errno == errno.ENOENT:
        return CgroupError(f"cannot set {field}: {err.filename} does not exist (not "
                           "supported by this kernel or controller)")
    return CgroupError(f"cannot set {field}: {err}")
