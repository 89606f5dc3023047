"""Scale: many containers running ``sleep`` at once (100 in the normal run, 1000 in the
long lane); how ``list`` and ``state`` latency grow with their number (10, 100,
1000); everything deleted and nothing left."""

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from . import relkit

TOTAL = relkit.budget(int(os.environ.get("RELIABILITY_SCALE", "100")),
                      int(os.environ.get("RELIABILITY_SCALE_LONG", "1000")))
WORKERS = 4
LEVELS = [n for n in (10, 100, 1000, 10000) if n <= TOTAL]


def _timed(rt, *args, n=5):
    times = []
    for _ in range(n):
        res = rt(*args)
        assert res.rc == 0, res
        times.append(res.elapsed)
    return statistics.median(times), res


def _rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def test_many_containers(rel):
    rt = rel.rt
    made = []
    pids = {}
    failures = []

    def up(cid):
        path = rel.bundle(cid)
        for args in (("create", "--bundle", path, cid), ("start", cid)):
            res = rt(*args)
            if res.rc != 0:
                failures.append(res)
                rt("delete", "--force", cid)
                return None
        return cid

    t_start = time.monotonic()
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            for level in LEVELS:
                ids = [f"sc{i}" for i in range(len(made), level)]
                t0 = time.monotonic()
                made += [c for c in pool.map(up, ids) if c]
                rate = len(ids) / (time.monotonic() - t0)
                assert not failures, f"{len(failures)} creates failed, first: {failures[0]}"
                lat_list, res = _timed(rt, "list")
                assert res.out.count(" running ") == level, f"list shows {res.out.count(' running ')}"
                lat_json, _ = _timed(rt, "list", "-f", "json")
                lat_state, res = _timed(rt, "state", made[level // 2], n=9)
                relkit.FIGURES.put(f"scale: list latency at {level:>4} (ms)", lat_list * 1000)
                relkit.FIGURES.put(f"scale: list -f json latency at {level:>4} (ms)",
                                   lat_json * 1000)
                relkit.FIGURES.put(f"scale: state latency at {level:>4} (ms)", lat_state * 1000)
                relkit.FIGURES.put(f"scale: create+start rate up to {level:>4} (/s)", rate)
        for cid in made:
            pids[cid] = rt.state(cid)["pid"]
        rss = [_rss_kib(p) for p in pids.values()]
        relkit.FIGURES.peak("scale: containers at peak", len(made))
        relkit.FIGURES.put("scale: container init RSS, median (KiB)", statistics.median(rss))
        assert all(relkit.alive(p) for p in pids.values())
        assert len(rt.ids()) == TOTAL
    finally:
        t0 = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            deleted = list(pool.map(lambda c: rt("delete", "--force", c), made))
        relkit.FIGURES.put(f"scale: delete --force rate, {len(made)} containers (/s)",
                           len(made) / max(time.monotonic() - t0, 1e-6))
        relkit.FIGURES.put("scale: total wall time (s)", time.monotonic() - t_start)
    bad = [d for d in deleted if d.rc != 0]
    assert not bad, f"{len(bad)} deletes failed, first: {bad[0]}"
    assert rt.ids() == []
    assert not [p for p in pids.values() if relkit.alive(p)]
    # the fixture's leak check follows: no process, cgroup, state entry, mount or fd
