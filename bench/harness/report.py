"""RESULTS.md and the JSON dump of raw samples."""

import json
import math
import os
import re

from . import scenarios as sc
from .stats import median, p90, ratio

# (label, (scenario, metric), limit): met when median(runtime) / median(baseline) <= limit
TARGETS = [
    ("lifecycle: create+start+wait+delete", sc.LIFECYCLE_TOTAL, 1.0),
    ("run -d + wait + delete", sc.RUN_DELETE_TOTAL, 1.0),
    ("burst: create+start+delete all", sc.BURST_TOTAL, 0.8),
    ("delete --force of running containers", sc.FORCE_TOTAL, 0.3),
    ("exec ID true", sc.EXEC, 1.0),
    ("created-container RSS (cgroup)", sc.CREATED_RSS, 0.3),
    ("create peak RSS (ru_maxrss)", sc.CREATE_PEAK, 1.5),
]

UNIT_LABEL = {"ns": "ms", "kB": "MiB", "n": "count"}


def fmt(value, unit):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "ns":
        ms = value / 1e6
        return f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"
    if unit == "kB":
        return f"{value / 1024:.2f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def fmt_ratio(r):
    return "—" if math.isnan(r) else f"{r:.2f}x"


def _row(cells):
    return "| " + " | ".join(cells) + " |"


def _table(header, rows):
    lines = [_row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    lines.extend(_row(r) for r in rows)
    return lines


class Report:
    def __init__(self, recorder, runtime_names, baseline, meta):
        self.rec = recorder
        self.names = runtime_names
        self.baseline = baseline if baseline in runtime_names else None
        self.others = [n for n in runtime_names if n != self.baseline]
        self.meta = meta

    # -- pieces ---------------------------------------------------------------------

    def _median(self, scenario, metric, name):
        values = self.rec.values(scenario, metric, name)
        return median(values) if values else math.nan

    def _cell(self, scenario, metric, name):
        values = self.rec.values(scenario, metric, name)
        if not values:
            return "failed" if name in self.rec.failures.get(scenario, {}) else "—"
        unit = self.rec.unit(scenario, metric)
        return f"{fmt(median(values), unit)} / {fmt(p90(values), unit)}"

    def _ratio(self, scenario, metric, name):
        if not self.baseline:
            return math.nan
        return ratio(self._median(scenario, metric, name),
                     self._median(scenario, metric, self.baseline))

    def _metric_rows(self, rows):
        """rows: [(label, scenario, metric)] -> table lines."""
        header = ["metric"] + [f"{n} median / p90" for n in self.names]
        header += [f"{n} / {self.baseline}" for n in self.others] if self.baseline else []
        body = []
        for label, scenario, metric in rows:
            unit = UNIT_LABEL.get(self.rec.unit(scenario, metric), "")
            cells = [f"{label} ({unit})"]
            cells += [self._cell(scenario, metric, n) for n in self.names]
            if self.baseline:
                cells += [fmt_ratio(self._ratio(scenario, metric, n)) for n in self.others]
            body.append(cells)
        return _table(header, body)

    def _counts(self, scenario):
        metrics = self.rec.samples.get(scenario, {})
        if not metrics:
            return ""
        first = next(iter(metrics.values()))
        return ", ".join(f"{n}: {len(first.get(n, []))}" for n in self.names)

    def _failures(self, scenario):
        return [f"- **{name} failed**: {msg}" for name, msg in
                self.rec.failures.get(scenario, {}).items()]

    def _notes(self, scenario):
        return [f"- {text}" for text in self.rec.notes.get(scenario, [])]

    # -- sections -------------------------------------------------------------------

    def targets(self):
        if not self.baseline:
            return ["No baseline runtime in this run: no ratios, no targets."]
        header = ["target", "limit"] + self.others
        body = []
        for label, (scenario, metric), limit in TARGETS:
            cells = [label, f"<= {limit:.1f}x"]
            for name in self.others:
                r = self._ratio(scenario, metric, name)
                if math.isnan(r):
                    failed = name in self.rec.failures.get(scenario, {})
                    cells.append("failed" if failed else "not measured")
                else:
                    cells.append(f"{fmt_ratio(r)} {'met' if r <= limit else 'missed'}")
            body.append(cells)
        return _table(header, body)

    def scenario_section(self, scenario_obj):
        key = scenario_obj.name
        if key not in self.rec.samples and key not in self.rec.failures:
            return []
        lines = [f"## {scenario_obj.title}", "", scenario_obj.description, ""]
        counts = self._counts(key)
        if counts:
            lines += [f"Samples per runtime (first row): {counts}.", ""]
        rows = [(m, key, m) for m in self.rec.samples.get(key, {})]
        lines += self._metric_rows(rows) + [""]
        extra = self._failures(key) + self._notes(key)
        return lines + (extra + [""] if extra else [])

    def scale_section(self, description):
        keys = sorted((k for k in set(self.rec.samples) | set(self.rec.failures)
                       if k.startswith("scale/")), key=lambda k: int(k.split("/")[1]))
        if not keys:
            return []
        metrics = []
        for key in keys:
            for m in self.rec.samples.get(key, {}):
                if m not in metrics:
                    metrics.append(m)
        rows = [(f"{m} @ {key.split('/')[1]}", key, m)
                for m in metrics for key in keys if m in self.rec.samples.get(key, {})]
        lines = ["## Scale", "", description, ""]
        lines += self._metric_rows(rows) + [""]
        for key in keys:
            extra = self._failures(key) + self._notes(key)
            if extra:
                lines += [f"At {key.split('/')[1]}:"] + extra + [""]
        return lines

    def machine(self):
        m = self.meta["machine"]
        lines = [f"- CPU: {m['cpu']}, {m['cores']} cores",
                 f"- Memory: {m['memory']}",
                 f"- Kernel: {m['kernel']} ({m['os']}); {m['cgroups']}",
                 f"- Python (harness): {m['python (harness)']}",
                 f"- Load average: {m['load average at start']} at start, "
                 f"{self.meta.get('load average at end', '?')} at end",
                 f"- Started: {m['started']}; took {self.meta.get('elapsed_s', 0):.0f} s",
                 "", "| runtime | version | invoked as |", "| --- | --- | --- |"]
        for name in self.names:
            info = m["runtimes"].get(name, {})
            version = info.get("version", "?")
            if info.get("python"):
                version += f"; Python {info['python']}"
            lines.append(f"| {name} | {version} | {self.meta['invocations'][name]} |")
        return lines

    def render(self, scenario_objs, scale_description):
        meta = self.meta
        lines = ["# Runtime benchmark results", ""]
        if meta.get("quick"):
            lines += ["**Quick mode** (few rounds, small counts): a smoke test of the "
                      "harness, not figures to quote.", ""]
        if meta.get("interrupted"):
            lines += ["**Interrupted**: the run was stopped early; tables hold what was "
                      "measured until then.", ""]
        lines += ["Produced by:", "", "```", meta["command"], "```", "",
                  f"Settings: {meta['settings']}", "",
                  "Cells are `median / p90` over the measured rounds (warm-up rounds "
                  "dropped); ratio columns are median ÷ the baseline's median "
                  f"({self.baseline}); below 1.00x is better.  See bench/README.md.", ""]
        lines += ["## Machine", ""] + self.machine() + [""]
        lines += ["## Targets (ratio of medians to "
                  f"{self.baseline or 'the baseline'})", ""] + self.targets() + [""]
        for obj in scenario_objs:
            lines += self.scenario_section(obj)
        lines += self.scale_section(scale_description)
        lines += ["## Notes", ""] + [f"- {n}" for n in meta.get("notes", [])] + [""]
        return "\n".join(lines)


def write(path_md, path_json, report, scenario_objs, scale_description):
    os.makedirs(os.path.dirname(os.path.abspath(path_md)), exist_ok=True)
    with open(path_md, "w") as f:
        f.write(report.render(scenario_objs, scale_description))
    dump = {"meta": report.meta, **report.rec.to_json()}
    with open(path_json, "w") as f:
        json.dump(dump, f, indent=1)
        f.write("\n")


def json_path_for(md_path):
    return re.sub(r"\.md$", "", md_path) + ".json"
