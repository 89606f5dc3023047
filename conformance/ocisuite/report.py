"""Markdown report and baseline files."""

import datetime
import json
import os
import platform

from .catalog import LEVEL_ORDER, REQS

RANK = {"FAIL": 3, "pass": 2, "skip": 1}


def merge(a, b):
    """Two verdicts for one requirement (two tests judged it): FAIL > pass > skip."""
    if a is None:
        return b
    if b is None:
        return a
    return a if RANK[a[0]] >= RANK[b[0]] else b


def cell(text, limit=None):
    t = " ".join(str(text).split())
    if limit and len(t) > limit:
        t = t[: limit - 1] + "…"
    return t.replace("|", "\\|")


def verdict_cell(v):
    if v is None:
        return "—"
    status, detail = v
    if status == "pass":
        return "pass"
    if status == "skip":
        return "skip: " + cell(detail, 90)
    return "**FAIL**: " + cell(detail, 110)


def summarize(results):
    """{group: {pass, FAIL, skip}} plus a 'total' row."""
    out = {g: {"pass": 0, "FAIL": 0, "skip": 0} for g in LEVEL_ORDER + ["total"]}
    for r in REQS:
        v = results.get(r.id)
        if v is None:
            continue
        out[r.group][v[0]] += 1
        out["total"][v[0]] += 1
    return out


def write_report(path, runs, started, argv):
    """runs: list of dicts with label, command, version, results, leaks, final_leaks,
    seconds, features_error, wrapped."""
    L = []
    L.append("# OCI runtime-spec v1.3 conformance report")
    L.append("")
    L.append(f"Generated {started:%Y-%m-%d %H:%M} UTC by `{' '.join(argv)}` on "
             f"Linux {platform.release()} ({runs[0].get('cgroup_mode', '?')} cgroups).")
    L.append("")
    L.append("Levels: MUST (incl. MUST NOT), REQUIRED, SHOULD (incl. SHOULD NOT), and MUST* = "
             "a config field whose effect the spec states without a keyword (a Linux runtime "
             "has to honour it). Each result was observed from inside the container or on "
             "the host, never taken from the runtime's own word. See conformance/README.md.")
    L.append("")
    L.append("## Runtimes")
    L.append("")
    L.append("| runtime | command | version | time |")
    L.append("|---|---|---|---|")
    for r in runs:
        cmd = r["command"] + (" (through the unshare wrapper for hybrid cgroups)"
                              if r.get("wrapped") else "")
        L.append(f"| {cell(r['label'])} | `{cell(cmd)}` | {cell(r['version'])} | "
                 f"{r['seconds']:.0f} s |")
    L.append("")
    L.append("## Summary")
    L.append("")
    L.append("| runtime | level | pass | FAIL | skip |")
    L.append("|---|---|---:|---:|---:|")
    for r in runs:
        s = summarize(r["results"])
        for g in LEVEL_ORDER + ["total"]:
            row = s[g]
            name = f"**{g}**" if g == "total" else g
            L.append(f"| {cell(r['label'])} | {name} | {row['pass']} | {row['FAIL']} | "
                     f"{row['skip']} |")
    L.append("")
    L.append("## Leak check")
    L.append("")
    L.append("After every test the suite deletes its containers (`kill`, `delete --force`) and "
             "looks for what is left: state entries, cgroups under the run's prefix, mounts "
             "under the run's directory, live processes. After the run it checks the whole "
             "prefix and directory again.")
    L.append("")
    for r in runs:
        leaks = r["leaks"]
        final = r["final_leaks"]
        if not leaks and not final:
            L.append(f"- **{cell(r['label'])}**: nothing left behind.")
            continue
        L.append(f"- **{cell(r['label'])}**: {len(leaks)} per-test leak(s), "
                 f"{len(final)} at the end of the run.")
        for test, what in leaks[:40]:
            L.append(f"  - `{test}`: {cell(what, 200)}")
        if len(leaks) > 40:
            L.append(f"  - … {len(leaks) - 40} more")
        for what in final[:40]:
            L.append(f"  - end of run: {cell(what, 200)}")
    L.append("")
    L.append("## Results")
    L.append("")
    head = "| id | section | level | requirement | " + " | ".join(cell(r["label"]) for r in runs) + " |"
    L.append(head)
    L.append("|---|---|---|---|" + "---|" * len(runs))
    doc = None
    for q in REQS:
        if q.doc != doc:
            doc = q.doc
            L.append(f"| **{doc}** | | | |" + " |" * len(runs))
        cells = " | ".join(verdict_cell(r["results"].get(q.id)) for r in runs)
        L.append(f"| `{q.id}` | {q.where} | {q.level} | {cell(q.text)} | {cells} |")
    L.append("")
    L.append("## Failure details")
    L.append("")
    for r in runs:
        fails = [(q, r["results"][q.id][1]) for q in REQS
                 if r["results"].get(q.id, ("",))[0] == "FAIL"]
        L.append(f"### {cell(r['label'])} ({len(fails)} failures)")
        L.append("")
        for q, d in fails:
            L.append(f"- `{q.id}` ({q.level}): {cell(d, 600)}")
        L.append("")
        if r.get("features_error"):
            L.append(f"`features`: {cell(r['features_error'], 300)}")
            L.append("")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def write_baseline(path, run):
    data = {
        "runtime": run["label"],
        "command": run["command"],
        "version": run["version"],
        "generated": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        "passing": sorted(q for q, v in run["results"].items() if v[0] == "pass"),
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    return data


def check_baseline(path, run, judged):
    """Requirement ids passing in the baseline that do not pass now (among those run)."""
    with open(path) as f:
        base = json.load(f)
    regressions = []
    for q in base.get("passing", []):
        if q not in judged:
            continue
        v = run["results"].get(q)
        if v is None or v[0] != "pass":
            regressions.append((q, v))
    return base, regressions
