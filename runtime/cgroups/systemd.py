"""The systemd cgroup driver (``--systemd-cgroup``), as runc's: systemd makes the
container's cgroup as a transient unit, the cgroupfs driver does the rest.

cgroupsPath is ``slice:prefix:name``: the unit is ``prefix-name.scope`` (or ``name``
itself when it ends in ``.slice``) in ``slice`` (system.slice when empty), and its
cgroup is the slice's path (``a-b.slice`` is ``/a.slice/a-b.slice``) joined with the
unit name.  ``apply`` asks systemd over D-Bus to start the unit with the pid in it
(StartTransientUnit, Delegate=yes, accounting on) and waits for its job; then the
cgroupfs manager of that path joins the controllers systemd does not manage (v1).
``set`` and ``update`` give systemd the resources it knows as unit properties
(SetUnitProperties: a later reload of systemd then keeps them), then the cgroupfs
manager writes every resource to the files, as for any container.  ``destroy``
stops the unit (systemd kills what is left and removes its cgroup), resets it if it
failed, and removes what the cgroupfs manager made.  Everything else (paths, freeze,
pids, stats, events) is the cgroupfs manager's.

systemd is reached on its private socket (/run/systemd/private, root only), else on
the system bus; runc tries them the other way round, which finds the same manager.
"""

import os
import time

from . import CgroupError, parse_systemd_path

PRIVATE_SOCKET = "/run/systemd/private"
SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
#: how long systemd may take to start or stop a unit (runc's figure)
JOB_TIMEOUT = 30.0

UINT64_MAX = (1 << 64) - 1


def unit_name(prefix, name):
    """runc's getUnitName: a scope unless the name asks for a slice."""
    if name.endswith(".slice"):
        return name
    return f"{prefix}-{name}.scope"


def expand_slice(slice_):
    """``a-b-c.slice`` -> ``/a.slice/a-b.slice/a-b-c.slice`` (runc's ExpandSlice);
    ``-.slice`` is the root."""
    if not slice_.endswith(".slice") or "/" in slice_:
        raise CgroupError(f"invalid slice name: {slice_}")
    if slice_ == "-.slice":
        return "/"
    stem = slice_[:-len(".slice")]
    if not stem or stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise CgroupError(f"invalid slice name: {slice_}")
    path, prefix = "", ""
    for part in stem.split("-"):
        path += f"/{prefix}{part}.slice"
        prefix += part + "-"
    return path


def cgroup_path(cgroups_path, container_id):
    """(slice, unit, the unit's cgroup below the hierarchy root) of a cgroupsPath."""
    slice_, prefix, name = parse_systemd_path(cgroups_path, container_id)
    slice_ = slice_ or "system.slice"
    unit = unit_name(prefix, name)
    return slice_, unit, expand_slice(slice_).rstrip("/") + "/" + unit


class Systemd:
    """A transient systemd unit around a cgroupfs manager (``inner``).  It is a
    ``Manager``: what it does not define here (paths, freeze, pids, stats, created,
    warnings...) is the cgroupfs manager's."""

    # systemd starts a scope only with a process in it: the stage-1 goes in at apply
    apply_early = True

    def __init__(self, unit, slice_, inner):
        self.unit = unit
        self.slice = slice_
        self.inner = inner
        self._bus = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    @classmethod
    def load(cls, saved, inner):
        return cls(saved["unit"], saved["slice"], inner)

    def save(self):
        saved = self.inner.save()
        saved["systemd"] = {"unit": self.unit, "slice": self.slice}
        return saved

    # -- D-Bus ---------------------------------------------------------------------

    def _connect(self):
        if self._bus is None:
            from .. import dbus

            if os.geteuid() == 0 and os.path.exists(PRIVATE_SOCKET):
                bus = dbus.Connection(PRIVATE_SOCKET, bus=False, timeout=JOB_TIMEOUT)
            else:
                bus = dbus.Connection(dbus.SYSTEM_BUS, bus=True, timeout=JOB_TIMEOUT)
            try:
                # systemd sends JobRemoved only to subscribed clients
                bus.call(SYSTEMD, MANAGER_PATH, MANAGER, "Subscribe")
            except BaseException:
                bus.close()
                raise
            self._bus = bus
        return self._bus

    def _call(self, member, signature="", *args):
        return self._connect().call(SYSTEMD, MANAGER_PATH, MANAGER, member, signature, args)

    def _run_job(self, member, signature, args, what):
        """Call a method that queues a job and wait for the job's end; returns its
        result ("done" when it succeeded)."""
        from ..dbus import MEMBER, SIGNAL

        deadline = time.monotonic() + JOB_TIMEOUT
        job = self._call(member, signature, *args)[0]

        def removed(m):
            return (m.type == SIGNAL and m.fields.get(MEMBER) == "JobRemoved"
                    and len(m.body) == 4 and m.body[1] == job)

        return self._bus.wait_signal(removed, deadline, what).body[3]

    def close(self):
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    # -- lifecycle -----------------------------------------------------------------

    def plan(self):
        # systemd owns the slices and the unit's cgroup; destroy() stops the unit
        # whatever state a killed create left it in
        pass

    def apply(self, pid):
        from ..dbus import DBusError, Variant

        props = [("Description", Variant("s", f"libcontainer container {self.unit}"))]
        if self.unit.endswith(".slice"):
            props.append(("Wants", Variant("s", self.slice)))
        else:
            props.append(("Slice", Variant("s", self.slice)))
            props.append(("Delegate", Variant("b", True)))
        if pid is not None:
            props.append(("PIDs", Variant("au", [pid])))
        for name in ("MemoryAccounting", "CPUAccounting", "TasksAccounting",
                     "IOAccounting" if self.version == 2 else "BlockIOAccounting"):
            props.append((name, Variant("b", True)))
        props.append(("DefaultDependencies", Variant("b", False)))
        def start():
            return self._run_job("StartTransientUnit", "ssa(sv)a(sa(sv))",
                                 (self.unit, "replace", props, []),
                                 f"systemd to create {self.unit}")

        try:
            try:
                result = start()
            except DBusError as e:
                if e.name != "org.freedesktop.systemd1.UnitExists":
                    raise
                # a failed unit of an earlier container with this name: reset, retry
                self._reset_failed()
                result = start()
        except DBusError as e:
            if e.name == "org.freedesktop.systemd1.UnitExists":
                raise CgroupError(f"systemd unit {self.unit} already exists (cgroupsPath "
                                  "names a unit that is in use)") from None
            raise CgroupError(f"systemd: start unit {self.unit}: {e}") from None
        if result != "done":
            self._reset_failed()
            raise CgroupError(f"error creating systemd unit `{self.unit}`: got `{result}`")
        self.inner.apply(pid)

    def _reset_failed(self):
        from ..dbus import DBusError

        try:
            self._call("ResetFailedUnit", "s", self.unit)
        except DBusError:
            pass

    def set(self, resources):
        self._set_properties(resources)
        self.inner.set(resources)

    def update(self, resources):
        self._set_properties(resources)
        self.inner.update(resources)

    def _set_properties(self, resources):
        from ..dbus import DBusError

        props = unit_properties(resources, self.version)
        if props:
            try:
                self._call("SetUnitProperties", "sba(sv)", self.unit, True, props)
            except DBusError as e:
                raise CgroupError(f"systemd: set properties of {self.unit}: {e}") from None

    def destroy(self):
        from ..dbus import DBusError

        try:
            result = self._run_job("StopUnit", "ss", (self.unit, "replace"),
                                   f"systemd to remove {self.unit}")
            if result != "done":
                raise CgroupError(f"error removing systemd unit `{self.unit}`: got `{result}`")
        except DBusError as e:
            if e.name != "org.freedesktop.systemd1.NoSuchUnit":
                raise CgroupError(f"systemd: stop unit {self.unit}: {e}") from None
        self._reset_failed()
        self.close()
        self.inner.destroy()


def unit_properties(resources, version):
    """linux.resources as systemd unit properties (those runc passes); the cgroupfs
    manager writes the same values, and everything else, to the files afterwards."""
    from ..dbus import Variant
    from . import convert

    props = []
    mem = resources.get("memory") or {}
    limit = mem.get("limit")
    if limit:
        props.append(("MemoryMax" if version == 2 else "MemoryLimit",
                      Variant("t", UINT64_MAX if limit < 0 else limit)))
    if version == 2 and mem.get("reservation"):
        props.append(("MemoryLow", Variant("t", mem["reservation"])))
    if version == 2 and mem.get("swap") and limit:
        try:
            swap = convert.memory_swap(mem["swap"], limit)
        except ValueError:
            swap = None  # the cgroupfs manager reports it with the field's name
        if swap is not None:
            props.append(("MemorySwapMax", Variant("t", UINT64_MAX if swap < 0 else swap)))
    cpu = resources.get("cpu") or {}
    if cpu.get("shares"):
        if version == 2:
            props.append(("CPUWeight", Variant("t", convert.cpu_weight(cpu["shares"]))))
        else:
            props.append(("CPUShares", Variant("t", cpu["shares"])))
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    if period:
        props.append(("CPUQuotaPeriodUSec", Variant("t", period)))
    if quota or period:
        per_sec = UINT64_MAX
        if quota > 0:
            # systemd keeps quotas in whole 10 ms per second: round up, as runc does
            per_sec = quota * 1_000_000 // (period or 100_000)
            per_sec += -per_sec % 10_000
        props.append(("CPUQuotaPerSecUSec", Variant("t", per_sec)))
    for key, name in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
        if cpu.get(key):
            props.append((name, Variant("ay", cpuset_mask(cpu[key]))))
    pids = resources.get("pids") or {}
    if pids.get("limit"):
        props.append(("TasksMax", Variant("t", UINT64_MAX if pids["limit"] < 0
                                            else pids["limit"])))
    if version == 1 and (resources.get("blockIO") or {}).get("weight"):
        props.append(("BlockIOWeight", Variant("t", resources["blockIO"]["weight"])))
    return props


def cpuset_mask(spec):
    """A cpuset list ("0-2,4") as systemd's byte mask (bit n of byte n // 8)."""
    from ..errors import Error
    from ..sched import parse_cpus

    try:
        cpus = parse_cpus(spec)
    except Error:
        raise CgroupError(f"invalid cpuset {spec!r}") from None
    mask = bytearray((max(cpus) // 8 + 1) if cpus else 0)
    for c in cpus:
        mask[c // 8] |= 1 << (c % 8)
    return bytes(mask)
