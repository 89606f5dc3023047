"""The benchmark scenarios.

A scenario's ``once(rt, record)`` does one round on one runtime and reports figures
through ``record(metric, value, unit)``; the runner alternates the runtimes round by
round (rotating who goes first) so that drift on a shared machine hits all of them
alike, and discards the warm-up rounds.  Metric names are the row labels of the
report; the constants below are the ones the targets refer to.
"""

import sys
import time

from . import procmem
from .bundles import SLEEP, TRUE
from .proc import CommandFailed, children, wait_all
from .stats import discard

# Metrics named by the targets (scenario, metric).
LIFECYCLE_TOTAL = ("lifecycle", "total: create+start+wait+delete")
RUN_DELETE_TOTAL = ("run", "total: run -d+wait+delete")
BURST_TOTAL = ("burst", "total: create+start+delete all")
FORCE_TOTAL = ("burst-force", "delete --force all")
EXEC = ("single", "exec ID true")
CREATED_RSS = ("memory", "created container RSS (its cgroup)")
CREATE_PEAK = ("memory", "create peak RSS (ru_maxrss)")


def rotated(items, k):
    if not items:
        return []
    k %= len(items)
    return items[k:] + items[:k]


def since(t0):
    return time.perf_counter_ns() - t0


class Scenario:
    name = ""
    title = ""
    description = ""

    def __init__(self, ops):
        self.ops = ops

    def setup(self, rt):
        """Before the first round on ``rt`` (untimed)."""

    def once(self, rt, record):
        raise NotImplementedError

    def teardown(self, rt):
        """After the last round on ``rt`` (untimed)."""


class Lifecycle(Scenario):
    name = "lifecycle"
    title = "Lifecycle of a /bin/true container"
    description = ("`create`, `start`, wait for the init to exit (pidfd), `delete`; the "
                   "total is the wall time of the whole sequence.  `cpu` rows are user+"
                   "system time of the runtime process (and the children it reaped).")

    def once(self, rt, record):
        ops = self.ops
        c = ops.new(rt, "lc", TRUE)
        t0 = time.perf_counter_ns()
        create = ops.create(rt, c)
        start = ops.start(rt, c)
        waited = ops.wait_exit(rt, c)
        delete = ops.delete(rt, c)
        total = since(t0)
        record("create", create.wall_ns)
        record("start", start.wall_ns)
        record("wait for exit", waited)
        record("delete", delete.wall_ns)
        record(LIFECYCLE_TOTAL[1], total)
        record("create cpu", create.cpu_ns)
        record("start cpu", start.cpu_ns)
        record("delete cpu", delete.cpu_ns)


class Run(Scenario):
    name = "run"
    title = "run"
    description = ("`run -d` of a /bin/true container, wait for exit, `delete` (the "
                   "target row); and `run ID` in the foreground, which waits for the "
                   "container and removes it itself in runc and crun.")

    def once(self, rt, record):
        ops = self.ops
        c = ops.new(rt, "rd", TRUE)
        t0 = time.perf_counter_ns()
        run = ops.run_detached(rt, c)
        ops.wait_exit(rt, c)
        delete = ops.delete(rt, c)
        total = since(t0)
        record("run -d", run.wall_ns)
        record("delete", delete.wall_ns)
        record(RUN_DELETE_TOTAL[1], total)

        c = ops.new(rt, "rf", TRUE)
        fg, removed = ops.run_foreground(rt, c)
        record("run (foreground, includes removal)", fg.wall_ns)
        if not removed:
            record.note(f"{rt.name}: `run` in the foreground kept the container; the "
                         "harness deleted it (untimed)")


class Burst(Scenario):
    name = "burst"
    title = "Burst"
    description = ("Create N /bin/true containers one after the other, then start all, "
                   "then (after all have exited, untimed) delete all.  `each` rows are "
                   "per container (N samples a round), `all` rows per round.")

    def __init__(self, ops, count):
        super().__init__(ops)
        self.count = count
        self.title = f"Burst of {count}"

    def once(self, rt, record):
        ops = self.ops
        conts = [ops.new(rt, "bu", TRUE) for _ in range(self.count)]
        each, totals = {}, {}

        def phase(name, step):
            t0 = time.perf_counter_ns()
            each[name] = [step(rt, c).wall_ns for c in conts]
            totals[name] = since(t0)

        phase("create", ops.create)
        phase("start", ops.start)
        alive = wait_all([c.watch for c in conts], ops.exit_timeout)
        if alive:
            raise CommandFailed([rt.name], f"inits {alive} did not exit")
        for c in conts:
            c.watch = None
        phase("delete", ops.delete)
        for name, values in each.items():
            for value in values:
                record(f"{name} each", value)
        for name, value in totals.items():
            record(f"{name} all", value)
        record(BURST_TOTAL[1], sum(totals.values()))


class BurstForce(Scenario):
    name = "burst-force"
    title = "delete --force of running containers"
    description = ("N containers running `sleep 1000` (created and started untimed), "
                   "then `delete --force` of each.")

    def __init__(self, ops, count):
        super().__init__(ops)
        self.count = count
        self.title = f"delete --force of {count} running containers"

    def once(self, rt, record):
        ops = self.ops
        conts = [ops.new(rt, "bf", SLEEP) for _ in range(self.count)]
        for c in conts:
            ops.create(rt, c)
            ops.start(rt, c)
        t0 = time.perf_counter_ns()
        each = [ops.delete(rt, c, force=True).wall_ns for c in conts]
        total = since(t0)
        for value in each:
            record("delete --force each", value)
        record(FORCE_TOTAL[1], total)


class Single(Scenario):
    name = "single"
    title = "Single commands on a running container"
    description = "One container running `sleep 1000` per runtime; each command timed alone."

    def __init__(self, ops):
        super().__init__(ops)
        self.running = {}

    def setup(self, rt):
        c = self.ops.new(rt, "sg", SLEEP)
        self.ops.create(rt, c, watch=False)
        self.ops.start(rt, c)
        self.running[rt.name] = c

    def once(self, rt, record):
        ops, cid = self.ops, self.running[rt.name].cid
        figures = [
            ("state", ops.timed(rt, "state", cid).wall_ns),
            ("kill ID 0", ops.timed(rt, "kill", cid, "0").wall_ns),
            (EXEC[1], ops.timed(rt, "exec", cid, "true").wall_ns),
            ("ps ID", ops.timed(rt, "ps", cid).wall_ns),
            ("ps --format json ID", ops.timed(rt, "ps", "--format", "json", cid).wall_ns),
        ]
        pause = ops.timed(rt, "pause", cid).wall_ns
        resume = ops.timed(rt, "resume", cid).wall_ns
        figures += [("pause", pause), ("resume", resume), ("pause+resume", pause + resume),
                    ("list (1 container)", ops.timed(rt, "list").wall_ns)]
        for metric, value in figures:  # all or nothing: a failed round records none
            record(metric, value)

    def teardown(self, rt):
        self.running.pop(rt.name, None)
        self.ops.cleanup(rt)


class Memory(Scenario):
    name = "memory"
    title = "Memory"
    description = (
        "`create` of a /bin/true container (never started).  *create peak RSS* is the "
        "ru_maxrss of the create process as its parent's wait4() sees it: the largest "
        "peak RSS among the create process and the descendants it reaped itself (a "
        "maximum, not a sum; the kernel keeps the peak across exec()).  The container's "
        "init, which outlives `create`, is not included, nor is anything reaped by "
        "someone else.  It is taken under GNU time, because a child of the Python "
        "harness would start from the harness's own ~14 MiB peak.  The "
        "*created container* rows sum Rss / Pss from /proc/PID/smaps_rollup over every "
        "process in the container's cgroup (all hierarchies), and over the init pid "
        "from `state`; *left behind* also adds any other process that `create` left "
        "running (reparented to the harness, a subreaper).")

    def once(self, rt, record):
        ops = self.ops
        c = ops.new(rt, "me", TRUE)
        before = children()
        peak = ops.create_peak(rt, c)
        left = children() - before
        init_pid = ops.state(rt, c)["pid"]
        members = ops.cgroup_members(rt, c)
        rss, pss, count = procmem.total(members)
        init = procmem.rollup(init_pid) or (0, 0)
        all_rss, all_pss, all_count = procmem.total(members | left | {init_pid})
        ops.delete(rt, c, force=True)
        record(CREATE_PEAK[1], peak, "kB")
        record(CREATED_RSS[1], rss, "kB")
        record("created container PSS (its cgroup)", pss, "kB")
        record("processes in its cgroup", count, "n")
        record("init RSS (pid from state)", init[0], "kB")
        record("init PSS (pid from state)", init[1], "kB")
        record("left behind by create: RSS", all_rss, "kB")
        record("left behind by create: PSS", all_pss, "kB")
        record("left behind by create: processes", all_count, "n")


class ScaleLevel(Scenario):
    """One round at a scale level: an extra container's lifecycle among N others."""

    name = "scale"

    def once(self, rt, record):
        ops = self.ops
        c = ops.new(rt, "sx", SLEEP)
        create = ops.create(rt, c)
        rss, _, _ = procmem.total(ops.cgroup_members(rt, c))
        start = ops.start(rt, c)
        state = ops.timed(rt, "state", c.cid)
        execd = ops.timed(rt, "exec", c.cid, "true")
        listed = ops.timed(rt, "list")
        ops.timed(rt, "kill", c.cid, "KILL")
        ops.wait_exit(rt, c)
        delete = ops.delete(rt, c)
        record("create", create.wall_ns)
        record("start", start.wall_ns)
        record("state", state.wall_ns)
        record("exec ID true", execd.wall_ns)
        record("list", listed.wall_ns)
        record("delete (stopped)", delete.wall_ns)
        record("created container RSS", rss, "kB")


def progress(text):
    print(text, file=sys.stderr, flush=True)


class Runner:
    def __init__(self, ops, recorder):
        self.ops = ops
        self.rec = recorder

    def _fail(self, scenario_name, rt, error):
        message = str(error)
        self.rec.fail(scenario_name, rt.name, message)
        rt.failed[scenario_name] = message
        progress(f"  {rt.name}: FAILED: {message}")
        self.ops.cleanup(rt)

    def run(self, scenario, runtimes, rounds, warmup, key=None):
        """Setup, warm-up + measured rounds alternating runtimes, teardown."""
        key = key or scenario.name
        active = []
        for rt in runtimes:
            try:
                scenario.setup(rt)
                active.append(rt)
            except CommandFailed as e:
                self._fail(key, rt, e)
        for i in range(warmup + rounds):
            for rt in rotated(list(active), i):
                record = self.rec.sink(key, rt.name) if i >= warmup else discard
                try:
                    scenario.once(rt, record)
                except CommandFailed as e:
                    self._fail(key, rt, e)
                    active.remove(rt)
        for rt in runtimes:
            try:
                scenario.teardown(rt)
            except CommandFailed as e:
                self._fail(key, rt, e)
            self.ops.cleanup(rt)

    def run_scale(self, runtimes, levels, rounds, warmup):
        """Grow the population of `sleep` containers of every runtime level by level
        (interleaved, one container per runtime at a time), measuring at each level."""
        level_scenario = ScaleLevel(self.ops)
        active = list(runtimes)
        alive = 0
        try:
            for level in levels:
                key = f"scale/{level}"
                progress(f"[scale] growing to {level} containers per runtime")
                while alive < level:
                    for rt in rotated(list(active), alive):
                        record = self.rec.sink(key, rt.name)
                        try:
                            c = self.ops.new(rt, "sp", SLEEP)
                            create = self.ops.create(rt, c, watch=False)
                            start = self.ops.start(rt, c)
                        except CommandFailed as e:
                            self._fail(key, rt, e)
                            active.remove(rt)
                            continue
                        record("population: create each (while growing)", create.wall_ns)
                        record("population: start each (while growing)", start.wall_ns)
                    alive += 1
                progress(f"[scale] {level} alive: {warmup + rounds} rounds")
                for i in range(warmup + rounds):
                    for rt in rotated(list(active), i):
                        record = self.rec.sink(key, rt.name) if i >= warmup else discard
                        try:
                            level_scenario.once(rt, record)
                        except CommandFailed as e:
                            self._fail(key, rt, e)
                            active.remove(rt)
        finally:
            progress("[scale] tearing down")
            for rt in runtimes:
                self.ops.cleanup(rt)
