"""Unit tests of the bench harness's pure parts (no containers, no root needed)."""

import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import cli, report, runtimes, stats  # noqa: E402
from harness import scenarios as sc  # noqa: E402


def test_quantiles_interpolate_between_order_statistics():
    values = [5, 1, 4, 2, 3]
    assert stats.median(values) == 3
    assert stats.quantile(values, 0) == 1 and stats.quantile(values, 1) == 5
    assert stats.p90(values) == pytest.approx(4.6)
    assert stats.median([1, 2]) == 1.5
    assert math.isnan(stats.median([]))


def test_ratio_of_missing_baseline_is_nan():
    assert stats.ratio(2.0, 4.0) == 0.5
    assert math.isnan(stats.ratio(2.0, 0))
    assert math.isnan(stats.ratio(math.nan, 1.0))


def test_recorder_keeps_order_units_and_drops_warmup():
    rec = stats.Recorder()
    sink = rec.sink("lifecycle", "runc")
    sink("create", 10)
    sink("rss", 5, "kB")
    stats.discard("create", 99)
    assert list(rec.samples["lifecycle"]) == ["create", "rss"]
    assert rec.values("lifecycle", "create", "runc") == [10]
    assert rec.unit("lifecycle", "rss") == "kB"
    assert rec.to_json()["units"] == {"lifecycle/create": "ns", "lifecycle/rss": "kB"}


def test_rotation_alternates_who_goes_first():
    assert [sc.rotated(["a", "b", "c"], k)[0] for k in range(4)] == ["a", "b", "c", "a"]


def test_runtime_specs(tmp_path):
    exe = tmp_path / "my-rt"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert runtimes.parse_spec(f"runtime={exe}") == ("runtime", str(exe))
    assert runtimes.parse_spec(str(exe)) == ("my-rt", str(exe))
    with pytest.raises(ValueError):
        runtimes.parse_spec("x=/nonexistent/binary")
    with pytest.raises(ValueError):
        runtimes.parse_spec(f"bad/name={exe}")
    made = runtimes.make_runtimes([f"crun={exe}", f"runtime={exe}"], hybrid=True)
    assert made[0].wrapper and not made[1].wrapper
    made = runtimes.make_runtimes([f"crun={exe}"], no_wrap={"crun"}, hybrid=True)
    assert not made[0].wrapper
    made[0].root = "/r"
    assert made[0].argv("state", "x") == [str(exe), "--root", "/r", "state", "x"]
    assert made[0].cgroup_parent == "/bench-crun"


def test_plan_quick_and_flags():
    settings = cli.plan(cli.parse_args(["--quick", "--scale-1000", "--skip", "burst"]))
    assert settings["rounds"] == cli.QUICK["rounds"]
    assert settings["scale_levels"] == [5, 1000]
    assert "burst" not in settings["scenarios"] and "burst-force" in settings["scenarios"]
    with pytest.raises(SystemExit):
        cli.plan(cli.parse_args(["--only", "nope"]))


def _meta():
    return {
        "command": "bench/run --quick", "settings": "s", "quick": True,
        "invocations": {"runc": "`runc`", "new": "`new`"},
        "notes": ["a note"],
        "machine": {"cpu": "CPU", "cores": 2, "kernel": "k", "os": "os", "memory": "1 GiB",
                    "cgroups": "v1", "python (harness)": "py", "started": "now",
                    "load average at start": "0 0 0",
                    "runtimes": {"runc": {"version": "1"}, "new": {"version": "2"}}},
    }


def test_report_targets_and_tables():
    rec = stats.Recorder()
    for value in (100, 110, 120):
        rec.add(*sc.LIFECYCLE_TOTAL, "runc", value * 1_000_000, "ns")
        rec.add(*sc.LIFECYCLE_TOTAL, "new", value * 900_000, "ns")
    rec.add(*sc.CREATE_PEAK, "runc", 10_000, "kB")
    rec.add(*sc.CREATE_PEAK, "new", 20_000, "kB")
    rec.fail("single", "new", "exec exploded")
    rep = report.Report(rec, ["runc", "new"], "runc", _meta())
    text = rep.render([sc.Lifecycle(None), sc.Single(None)], "scale")
    assert "| lifecycle: create+start+wait+delete | <= 1.0x | 0.90x met |" in text
    assert "| create peak RSS (ru_maxrss) | <= 1.5x | 2.00x missed |" in text
    assert "| exec ID true | <= 1.0x | failed |" in text
    assert "| total: create+start+wait+delete (ms) | 110 / 118 | 99.00 / 106 | 0.90x |" in text
    assert "**new failed**: exec exploded" in text
    assert report.json_path_for("bench/RESULTS.md") == "bench/RESULTS.json"
