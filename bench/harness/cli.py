"""bench/run: time whole processes of OCI runtimes against each other in one run.

    bench/run --runtime runc --runtime crun [--runtime NAME=PATH ...] [--quick] ...

See bench/README.md.
"""

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time

from . import machine, procmem, report
from . import scenarios as sc
from .bundles import DEFAULT_OCI_VERSION, BundleFactory
from .ops import Ops
from .proc import PeakMeter, Spawner, become_subreaper, reap_orphans
from .runtimes import make_runtimes
from .stats import Recorder, median

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCENARIOS = ["lifecycle", "run", "single", "memory", "burst", "burst-force", "scale"]

FULL = dict(rounds=20, warmup=2, burst=50, burst_rounds=5, burst_warmup=1,
            scale_levels=[10, 100], scale_rounds=5, scale_warmup=1)
QUICK = dict(rounds=3, warmup=1, burst=5, burst_rounds=2, burst_warmup=0,
             scale_levels=[5], scale_rounds=2, scale_warmup=0)

SCALE_DESCRIPTION = (
    "N containers per runtime kept running `sleep 1000` (all runtimes' populations "
    "alive at once, grown level by level, one container per runtime in turn); at each "
    "level, rounds of one extra container: `create` (and the RSS of its cgroup while "
    "created), `start`, `state`, `exec ID true`, `list` (all N+1), `kill KILL`, wait, "
    "`delete`.  The population rows are the create/start times of the containers "
    "added to reach that level.")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", action="append", dest="runtimes", metavar="NAME[=PATH]",
                   help="a runtime to test (repeat; default: runc and crun). NAME=PATH, "
                        "NAME looked up on PATH, or a PATH named after its file")
    p.add_argument("--baseline", default="runc", help="ratios are to this runtime (runc)")
    p.add_argument("--quick", action="store_true",
                   help="few rounds, small counts: a smoke test in under a minute")
    p.add_argument("--only", help="comma-separated scenarios to run: " + ",".join(SCENARIOS))
    p.add_argument("--skip", help="comma-separated scenarios to leave out")
    p.add_argument("--rounds", type=int, help="measured rounds per runtime (20; quick 3)")
    p.add_argument("--warmup", type=int, help="warm-up rounds per runtime (2; quick 1)")
    p.add_argument("--burst", type=int, help="containers in the burst scenarios (50; quick 5)")
    p.add_argument("--burst-rounds", type=int, help="rounds of the burst scenarios (5; quick 2)")
    p.add_argument("--scale-levels", help="comma-separated population sizes (10,100; quick 5)")
    p.add_argument("--scale-1000", action="store_true",
                   help="add the 1000-container level (slow: several minutes per runtime)")
    p.add_argument("--scale-rounds", type=int, help="rounds per scale level (5; quick 2)")
    p.add_argument("--wrap-unified", action="append", default=[], metavar="NAME",
                   help="run NAME in a mount namespace without the cgroup2 mount at "
                        "/sys/fs/cgroup/unified (default for crun on a hybrid host)")
    p.add_argument("--no-wrap-unified", action="append", default=[], metavar="NAME",
                   help="do not wrap NAME even if it is crun on a hybrid host")
    p.add_argument("--oci-version", default=DEFAULT_OCI_VERSION,
                   help=f"ociVersion written into the configs ({DEFAULT_OCI_VERSION})")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds before one runtime command is killed (60)")
    p.add_argument("--out", help="Markdown output (bench/RESULTS.md; quick: "
                                 "bench/RESULTS-quick.md); raw samples go to the same "
                                 "name with .json")
    p.add_argument("--workdir-parent", default="/tmp",
                   help="where the bench-XXXX work directory is made (/tmp)")
    return p.parse_args(argv)


def plan(args):
    settings = dict(QUICK if args.quick else FULL)
    for key in ("rounds", "warmup", "burst", "burst_rounds", "scale_rounds"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.scale_levels:
        settings["scale_levels"] = [int(x) for x in args.scale_levels.split(",") if x]
    if args.scale_1000 and 1000 not in settings["scale_levels"]:
        settings["scale_levels"].append(1000)
    settings["scale_levels"] = sorted(set(settings["scale_levels"]))
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    skipped = args.skip.split(",") if args.skip else []
    unknown = [s for s in chosen + skipped if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}")
    settings["scenarios"] = [s for s in SCENARIOS if s in chosen and s not in skipped]
    return settings


def settings_text(s):
    return (f"{s['rounds']} rounds after {s['warmup']} warm-up for lifecycle/run/single/"
            f"memory; burst of {s['burst']} x {s['burst_rounds']} rounds after "
            f"{s['burst_warmup']} warm-up; scale levels {s['scale_levels']} x "
            f"{s['scale_rounds']} rounds after {s['scale_warmup']} warm-up; scenarios: "
            f"{', '.join(s['scenarios'])}")


def measure_wrapper_overhead(spawner, wrapper, rounds=20):
    """Median extra wall time of the unified-umount wrapper around /bin/true."""
    plain = ["/bin/true"]
    wrapped = [*wrapper, "/bin/true"]
    times = {"plain": [], "wrapped": []}
    for i in range(rounds + 3):
        for key, argv in (("plain", plain), ("wrapped", wrapped)):
            sample, _, _ = spawner.run(argv)
            if i >= 3:
                times[key].append(sample.wall_ns)
    return median(times["plain"]), median(times["wrapped"])


def remove_cgroups(rt, id_prefix):
    """rmdir what this run left under /bench-<name> in every hierarchy; return the
    container cgroups that were still there (leaks)."""
    leaks = []
    for mount in procmem.cgroup_mounts():
        parent = os.path.join(mount, rt.cgroup_parent.strip("/"))
        if not os.path.isdir(parent):
            continue
        for entry in sorted(os.listdir(parent)):
            path = os.path.join(parent, entry)
            if not (entry.startswith(id_prefix) and os.path.isdir(path)):
                continue
            leaks.append(path)
            for pid in procmem.cgroup_members(os.path.join(rt.cgroup_parent, entry)):
                try:  # a process of a container this run started
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for _ in range(50):
                reap_orphans()
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        try:
            os.rmdir(parent)  # fails while someone else's containers are in it
        except OSError:
            pass
    return leaks


def cleanup_everything(ops, runtimes, id_prefix):
    notes = []
    for rt in runtimes:
        ops.cleanup(rt)
        stray = [e for e in ops.stray_state(rt) if e.startswith(id_prefix)]
        if stray:
            notes.append(f"LEAK: {rt.name} kept state for {len(stray)} deleted "
                         f"container(s), e.g. {stray[0]}")
            for cid in stray:
                ops.try_run(rt, "delete", "--force", cid)
        leaks = remove_cgroups(rt, id_prefix)
        if leaks:
            notes.append(f"LEAK: {rt.name} left {len(leaks)} cgroup dir(s) behind, e.g. "
                         f"{leaks[0]}")
    return notes


def command_line(argv):
    argv0 = os.environ.get("BENCH_ARGV0", "bench/run")
    return " ".join(shlex.quote(a) for a in [argv0, *argv])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    settings = plan(args)
    if os.geteuid() != 0:
        raise SystemExit("bench/run needs root (it creates containers and cgroups)")
    try:
        runtimes = make_runtimes(args.runtimes or ["runc", "crun"],
                                 wrap=set(args.wrap_unified), no_wrap=set(args.no_wrap_unified))
    except ValueError as e:
        raise SystemExit(str(e))
    names = [rt.name for rt in runtimes]
    if args.baseline not in names:
        print(f"warning: baseline {args.baseline!r} is not among {names}: no ratios",
              file=sys.stderr)
    out_md = args.out or os.path.join(BENCH_DIR, "RESULTS-quick.md" if args.quick
                                      else "RESULTS.md")
    out_json = report.json_path_for(out_md)

    workdir = tempfile.mkdtemp(prefix="bench-", dir=args.workdir_parent)
    for rt in runtimes:
        rt.root = os.path.join(workdir, f"root-{rt.name}")
        os.makedirs(rt.root)
    become_subreaper()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    spawner = Spawner(timeout=args.timeout)
    id_prefix = f"b{os.getpid()}-"
    rec = Recorder()
    notes = []
    meta = {"command": command_line(argv), "quick": args.quick, "settings":
            settings_text(settings), "settings_raw": settings, "baseline": args.baseline,
            "workdir": workdir, "invocations": {rt.name: rt.describe() for rt in runtimes}}
    began = time.monotonic()
    scenario_objs = []
    ops = None
    try:
        meta["machine"] = machine.describe(runtimes, spawner)
        wrapped = [rt for rt in runtimes if rt.wrapper]
        if wrapped:
            plain, wrapped_ns = measure_wrapper_overhead(spawner, wrapped[0].wrapper)
            meta["wrapper_overhead_ns"] = wrapped_ns - plain
            notes.append(
                f"{', '.join(rt.name for rt in wrapped)} ran inside the unified-umount "
                f"wrapper (`unshare -m sh -c 'umount ...; exec ...'`), which adds about "
                f"{(wrapped_ns - plain) / 1e6:.2f} ms to every command (median over 20 runs "
                f"of /bin/true: {plain / 1e6:.2f} ms plain, {wrapped_ns / 1e6:.2f} ms "
                "wrapped); its figures include that.  Its create peak RSS can be the "
                "wrapper's (unshare, sh, umount) when those peak higher than the runtime.")
        meter = PeakMeter(spawner, workdir)
        notes.append(f"create peak RSS: {meter.describe()}.")
        ops = Ops(spawner, BundleFactory(workdir, args.oci_version), meter)
        runner = sc.Runner(ops, rec)
        s = settings
        plan_items = {
            "lifecycle": (sc.Lifecycle(ops), s["rounds"], s["warmup"]),
            "run": (sc.Run(ops), s["rounds"], s["warmup"]),
            "single": (sc.Single(ops), s["rounds"], s["warmup"]),
            "memory": (sc.Memory(ops), s["rounds"], s["warmup"]),
            "burst": (sc.Burst(ops, s["burst"]), s["burst_rounds"], s["burst_warmup"]),
            "burst-force": (sc.BurstForce(ops, s["burst"]), s["burst_rounds"],
                            s["burst_warmup"]),
        }
        for name in s["scenarios"]:
            t0 = time.monotonic()
            if name == "scale":
                runner.run_scale(runtimes, s["scale_levels"], s["scale_rounds"],
                                 s["scale_warmup"])
            else:
                obj, rounds, warmup = plan_items[name]
                scenario_objs.append(obj)
                sc.progress(f"[{name}] {warmup} warm-up + {rounds} rounds x {len(runtimes)} "
                            "runtimes")
                runner.run(obj, runtimes, rounds, warmup)
            sc.progress(f"[{name}] done in {time.monotonic() - t0:.1f} s "
                        f"(load {machine.loadavg()})")
    except KeyboardInterrupt:
        meta["interrupted"] = True
        sc.progress("interrupted: cleaning up")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if ops is not None:
            leak_notes = cleanup_everything(ops, runtimes, id_prefix)
        else:
            leak_notes = []
        spawner.close()
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    notes += leak_notes or ["No leaks: after cleanup no state entry and no cgroup of "
                            "this run was left for any runtime."]
    meta["elapsed_s"] = time.monotonic() - began
    meta["load average at end"] = machine.loadavg()
    meta["notes"] = notes
    if "machine" not in meta:
        return 130
    rep = report.Report(rec, names, args.baseline, meta)
    report.write(out_md, out_json, rep, scenario_objs, SCALE_DESCRIPTION)
    sc.progress(f"wrote {out_md} and {out_json}")
    return 130 if meta.get("interrupted") else 0
