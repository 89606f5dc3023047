"""Per-container bundles over one shared busybox rootfs.

Each container gets its own small bundle directory (config.json and the pid file)
because its ``linux.cgroupsPath`` must be its own: ``/bench-<runtime>/<id>``.  The
rootfs is built once by tools/mkbundle.py and referenced by absolute path.
"""

import copy
import json
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "tools"))
sys.path.insert(0, _REPO)

import mkbundle  # noqa: E402

# The ociVersion written into every config.  crun 1.8.1 rejects anything newer than
# 1.1.x ("unknown version specified"); runc 1.1.5 implements 1.0.2.
DEFAULT_OCI_VERSION = "1.0.2"

TRUE = ("/bin/true",)
SLEEP = ("sleep", "1000")


class Container:
    __slots__ = ("cid", "bundle", "pidfile", "pid", "watch")

    def __init__(self, cid, bundle):
        self.cid = cid
        self.bundle = bundle
        self.pidfile = os.path.join(bundle, "init.pid")
        self.pid = None
        self.watch = None  # an ExitWatch on the init process, once created

    def read_pid(self):
        with open(self.pidfile) as f:
            self.pid = int(f.read().strip())
        return self.pid


class BundleFactory:
    def __init__(self, workdir, oci_version=DEFAULT_OCI_VERSION):
        self.workdir = workdir
        self.rootfs = os.path.join(workdir, "rootfs")
        mkbundle.make_rootfs(self.rootfs)
        self.oci_version = oci_version
        self._templates = {}
        self._seq = 0

    def _template(self, args):
        if args not in self._templates:
            config = mkbundle.make_config(list(args), terminal=False)
            config["ociVersion"] = self.oci_version
            config["process"]["terminal"] = False
            config["root"]["path"] = self.rootfs
            self._templates[args] = config
        return self._templates[args]

    def new(self, runtime, tag, args):
        """A fresh bundle for ``runtime`` running ``args``; the id is unique per run."""
        self._seq += 1
        cid = f"b{os.getpid()}-{tag}-{self._seq}"
        bundle = os.path.join(self.workdir, "bundles", runtime.name, cid)
        os.makedirs(bundle)
        config = copy.deepcopy(self._template(args))
        config["linux"]["cgroupsPath"] = f"{runtime.cgroup_parent}/{cid}"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f)
        return Container(cid, bundle)
