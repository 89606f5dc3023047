#!/usr/bin/env python3
"""Build OCI bundles around busybox-static, for the demo, tests, conformance and bench.

    tools/mkbundle.py DIR [--tty] [-- ARGS...]

writes DIR/rootfs (busybox and its applet links, /etc/passwd and /etc/group with a
few users) and DIR/config.json (runtime's default spec, not read-only, running ARGS
without a terminal unless --tty).  As a module: ``make_bundle(dir, args, **changes)``.
"""

import json
import os
import shutil
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))

from runtime.specgen import default_spec  # noqa: E402

BUSYBOX = os.environ.get("BUSYBOX", "/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:
nogroup:x:65534:
user:x:1000:
"""


def _applets():
    import subprocess

    out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def make_rootfs(root):
    """A busybox root filesystem with a private copy of busybox."""
    if not os.path.exists(BUSYBOX):
        raise SystemExit(f"{BUSYBOX} not found: apt-get install busybox-static")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
              "root", "home/user", "var/run", "run", "mnt"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    target = os.path.join(root, "bin/busybox")
    if not os.path.exists(target):
        # a copy, never a hard link: a container may write its rootfs, and a link
        # would make the host's busybox one of its files
        shutil.copy2(BUSYBOX, target)
    for applet in _applets():
        link = os.path.join(root, applet.lstrip("/"))
        if applet == "bin/busybox" or os.path.lexists(link):
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("/bin/busybox", link)
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write(GROUP)
    os.chown(os.path.join(root, "home/user"), 1000, 1000)


def make_config(args=("sh",), terminal=False, readonly=False):
    config = default_spec()
    config["process"]["args"] = list(args)
    config["process"]["terminal"] = terminal
    config["root"]["readonly"] = readonly
    return config


def make_bundle(bundle, args=("sh",), terminal=False, config=None):
    """Write ``bundle``/rootfs and ``bundle``/config.json; return the config."""
    os.makedirs(bundle, exist_ok=True)
    make_rootfs(os.path.join(bundle, "rootfs"))
    if config is None:
        config = make_config(args, terminal)
    write_config(bundle, config)
    return config


def write_config(bundle, config):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    bundle, rest = argv[0], argv[1:]
    terminal = "--tty" in rest
    args = rest[rest.index("--") + 1:] if "--" in rest else ["sh"]
    make_bundle(bundle, args, terminal)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
