"""Memory of live processes: RSS and PSS from /proc/PID/smaps_rollup, cgroup members."""

import os


def rollup(pid):
    """(rss_kb, pss_kb) of one process, or None if it is gone."""
    rss = pss = None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    if rss is None:  # a zombie or kernel thread has no mm
        return None
    return rss, pss or 0


def total(pids):
    """(rss_kb, pss_kb, processes counted) summed over ``pids``."""
    rss = pss = count = 0
    for pid in pids:
        got = rollup(pid)
        if got:
            rss += got[0]
            pss += got[1]
            count += 1
    return rss, pss, count


def cgroup_mounts():
    """Mount points of every cgroup (v1) and cgroup2 hierarchy we can see."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                points.append(left.split()[4])
    return points


def cgroup_members(cgroups_path):
    """Pids in the cgroup ``cgroups_path`` (a container's linux.cgroupsPath), across
    all hierarchies; the path is never "/", so nothing outside the container counts."""
    rel = cgroups_path.strip("/")
    if not rel:
        raise ValueError("refusing to read the root cgroup")
    pids = set()
    for mount in cgroup_mounts():
        try:
            with open(os.path.join(mount, rel, "cgroup.procs")) as f:
                pids.update(int(p) for p in f.read().split())
        except (FileNotFoundError, NotADirectoryError):
            pass
    return pids
