"""``runtime features``: what this runtime implements (features.md, features-linux.md).

As the spec asks, this describes the runtime, not the host: a feature is listed
because the code implements it, whether or not this kernel has it.
"""

from . import OCI_VERSION, capabilities, namespaces, rootfs

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop"]


def features():
    from . import sched, seccomp

    mount_options = sorted(set(rootfs.FLAGS) | set(rootfs.PROPAGATION) | set(rootfs.RECURSIVE)
                           | set(rootfs.EXTRA_OPTIONS))
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": HOOKS,
        "mountOptions": mount_options,
        "linux": {
            "namespaces": list(namespaces.TYPES),
            "capabilities": list(capabilities.NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": False,
                       "rdma": True},
            "seccomp": seccomp.features(),
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False},
            "memoryPolicy": {"modes": list(sched.MPOL_MODES), "flags": list(sched.MPOL_FLAGS)},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
        },
        "annotations": {
            "io.github.seccomp.libseccomp.version": seccomp.libseccomp_version(),
        },
    }
