"""conformance/run: grade runc-compatible runtimes against runtime-spec v1.3."""

import argparse
import datetime
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

from . import harness
from .catalog import REQS
from .harness import RunEnv, Runtime, Skip, TestCtx, TestError
from .registry import load_all
from .report import check_baseline, merge, summarize, write_baseline, write_report

CONF_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="conformance/run",
        description="Run the OCI runtime-spec v1.3 conformance suite against runc-compatible "
                    "runtimes and write a Markdown report.")
    p.add_argument("runtimes", nargs="*", metavar="RUNTIME",
                   help="command name or path, or NAME=COMMAND to label it")
    p.add_argument("-o", "--report", default=os.path.join(CONF_DIR, "REPORT.md"),
                   help="Markdown report path (default: conformance/REPORT.md)")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("-k", "--only", action="append", default=[], metavar="PATTERN",
                   help="run only tests whose name or requirement id matches this glob "
                        "(substring if no wildcard); repeatable")
    p.add_argument("--list", action="store_true", help="list requirements and tests, then exit")
    p.add_argument("--keep", action="store_true",
                   help="keep bundles and outputs under /tmp/conformance-* for debugging")
    p.add_argument("-v", "--verbose", action="store_true", help="print every verdict")
    p.add_argument("--baseline", metavar="PATH", help="baseline file for --check/--write-baseline")
    p.add_argument("--check", action="store_true",
                   help="exit non-zero if a requirement passing in --baseline does not pass now")
    p.add_argument("--write-baseline", action="store_true",
                   help="write the passing requirement ids to --baseline")
    p.add_argument("--no-report", action="store_true", help="do not write the Markdown report")
    a = p.parse_args(argv)
    if not a.list and not a.runtimes:
        p.error("give at least one RUNTIME")
    if (a.check or a.write_baseline) and not a.baseline:
        p.error("--check and --write-baseline need --baseline PATH")
    if (a.check or a.write_baseline) and len(a.runtimes) != 1:
        p.error("--check and --write-baseline take exactly one RUNTIME")
    return a


def matches(test, patterns):
    if not patterns:
        return True
    names = [test.name] + list(test.reqs)
    for pat in patterns:
        wild = any(ch in pat for ch in "*?[")
        for n in names:
            if (fnmatch.fnmatch(n, pat) if wild else pat in n):
                return True
    return False


def build_probe():
    d = tempfile.mkdtemp(prefix="conformance-build-", dir="/tmp")
    out = os.path.join(d, "probe")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.c")
    p = subprocess.run(["gcc", "-static", "-O2", "-o", out, src], capture_output=True, text=True)
    if p.returncode != 0:
        shutil.rmtree(d, ignore_errors=True)
        raise SystemExit(f"cannot build the probe (gcc -static): {p.stderr.strip()[:500]}")
    return d, out


def list_catalog(tests):
    covered = {}
    for t in tests:
        for r in t.reqs:
            covered.setdefault(r, []).append(t.name)
    for q in REQS:
        print(f"{q.id:45} {q.level:10} {q.where:55} {','.join(covered.get(q.id, ['-']))}")
    missing = [q.id for q in REQS if q.id not in covered]
    print(f"\n{len(REQS)} requirements, {len(tests)} tests, {len(missing)} without a test")
    for m in missing:
        print("  untested:", m)


def run_test(env, test, verbose):
    ctx = TestCtx(env, test)
    t0 = time.monotonic()
    outcome = None
    try:
        test.fn(ctx)
    except Skip as e:
        outcome = ("skip", str(e))
    except TestError as e:
        outcome = ("FAIL", str(e))
    except Exception as e:  # noqa: BLE001 - a bug in a test must not stop the run
        tb = traceback.format_exc().strip().splitlines()
        where = tb[-3].strip() if len(tb) > 2 else ""
        outcome = ("FAIL", f"test error {type(e).__name__}: {e} ({where})")
    finally:
        try:
            ctx.cleanup()
        except Exception as e:  # noqa: BLE001
            env.leaks.append((test.name, f"cleanup crashed: {e}"))
    results = {}
    for r in test.reqs:
        v = ctx.results.get(r)
        if v is None:
            v = outcome or ("FAIL", "not judged by its test (suite bug)")
        results[r] = v
    dt = time.monotonic() - t0
    return results, dt


def run_runtime(spec, tests, probe, args):
    rt = Runtime(spec)
    info = {"label": rt.label, "command": " ".join(rt.argv), "version": rt.describe(),
            "wrapped": rt.wrapped, "results": {}, "leaks": [], "final_leaks": [],
            "seconds": 0.0, "cgroup_mode": harness.cgroup_mode(), "features_error": None}
    if not rt.available():
        for t in tests:
            for r in t.reqs:
                info["results"][r] = ("skip", f"runtime {rt.argv[0]} not found")
        return info
    env = RunEnv(rt, probe, keep=args.keep, verbose=args.verbose)
    t0 = time.monotonic()
    env.setup()
    env.load_features()
    info["features_error"] = env.features_error
    print(f"== {rt.label}: {info['command']} ({info['version']}); work dir {env.base}, "
          f"cgroup prefix {env.cgprefix}", file=sys.stderr)
    try:
        for i, t in enumerate(tests, 1):
            res, dt = run_test(env, t, args.verbose)
            for r, v in res.items():
                info["results"][r] = merge(info["results"].get(r), v)
            fails = [r for r, v in res.items() if v[0] == "FAIL"]
            mark = "FAIL" if fails else ("skip" if all(v[0] == "skip" for v in res.values())
                                         else "ok")
            print(f"[{rt.label} {i:3}/{len(tests)}] {t.name:32} {mark:4} {dt:5.1f}s"
                  + (f"  {', '.join(fails)}" if fails else ""), file=sys.stderr)
            if args.verbose:
                for r, v in res.items():
                    print(f"      {r}: {v[0]} {v[1][:160]}", file=sys.stderr)
    finally:
        env.teardown()
    info["leaks"] = env.leaks
    info["final_leaks"] = env.final_leaks
    info["seconds"] = time.monotonic() - t0
    return info


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tests = load_all()
    if args.list:
        list_catalog(tests)
        return 0
    if os.geteuid() != 0:
        raise SystemExit("the conformance suite needs root (it runs containers)")
    selected = [t for t in tests if matches(t, args.only)]
    if not selected:
        raise SystemExit("no test matches --only")
    judged = {r for t in selected for r in t.reqs}
    started = datetime.datetime.utcnow()
    harness.set_subreaper()
    build_dir, probe = build_probe()
    runs = []
    try:
        for spec in args.runtimes:
            runs.append(run_runtime(spec, selected, probe, args))
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    if not args.no_report:
        write_report(args.report, runs, started, ["conformance/run"] + sys.argv[1:])
        print(f"report: {args.report}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{k: v for k, v in r.items()} for r in runs], f, indent=1, default=str)
    code = 0
    for r in runs:
        s = summarize(r["results"])["total"]
        print(f"{r['label']}: {len(r['leaks'])} per-test leaks, {len(r['final_leaks'])} at the "
              f"end, {r['seconds']:.0f}s")
        print(f"{r['label']}: {s['pass']} passed, {s['FAIL']} failed, {s['skip']} skipped")
    if args.write_baseline:
        data = write_baseline(args.baseline, runs[0])
        print(f"baseline {args.baseline}: {len(data['passing'])} passing requirements")
    if args.check:
        base, regressions = check_baseline(args.baseline, runs[0], judged)
        if regressions:
            print(f"REGRESSIONS against {args.baseline} ({base.get('runtime')}):")
            for q, v in regressions:
                print(f"  {q}: {v[0] + ': ' + v[1] if v else 'not run'}")
            code = 1
        else:
            print(f"no regressions against {args.baseline} "
                  f"({len([q for q in base.get('passing', []) if q in judged])} checked)")
    return code


if __name__ == "__main__":
    sys.exit(main())
