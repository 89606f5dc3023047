"""Idmapped bind mounts: ``mounts[].uidMappings``/``gidMappings`` and the ``idmap`` /
``ridmap`` options, through mount_setattr(MOUNT_ATTR_IDMAP).

The runtime, privileged on the host, clones each source tree (open_tree) and
idmaps it before the container exists; the init later attaches the detached tree
at its destination.  The mapping is a user namespace made for the purpose by a
short-lived child whose uid_map/gid_map the runtime writes.
"""

import os

from . import linux
from .errors import ConfigError, Error, SysError
from .namespaces import write_id_maps


def _mappings(config, index, mount):
    """(uid mappings, gid mappings, None), or (None, None, path) of the joined user
    namespace whose mapping the mount takes."""
    uids, gids = mount.get("uidMappings"), mount.get("gidMappings")
    if uids or gids:
        return uids, gids, None
    lin = config.get("linux") or {}
    user = next((ns for ns in lin.get("namespaces") or () if ns["type"] == "user"), None)
    if user is None:
        raise ConfigError(f"mounts[{index}]", "idmap without uidMappings/gidMappings needs a "
                          "user namespace to take the mapping from")
    if user.get("path"):
        return None, None, user["path"]
    return lin.get("uidMappings"), lin.get("gidMappings"), None


def prepare(config):
    """{mount index: detached idmapped tree fd} for every idmapped mount."""
    trees = {}
    users = {}
    try:
        for i, m in enumerate(config.get("mounts") or ()):
            opts = set(m.get("options") or ())
            if not (m.get("uidMappings") or m.get("gidMappings") or opts & {"idmap", "ridmap"}):
                continue
            if not (opts & {"bind", "rbind"} or m.get("type") == "bind"):
                raise ConfigError(f"mounts[{i}]", "idmapped mounts must be bind mounts")
            uids, gids, joined = _mappings(config, i, m)
            key = joined or (repr(uids), repr(gids))
            if key not in users:
                if joined:
                    try:
                        users[key] = os.open(joined, os.O_RDONLY | os.O_CLOEXEC)
                    except OSError as e:
                        raise SysError("open user namespace", e.errno, joined) from None
                else:
                    users[key] = userns_fd(uids, gids)
            source = m.get("source") or ""
            rec = "rbind" in opts
            tree = linux.open_tree(
                linux.AT_FDCWD, source,
                linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC | (linux.AT_RECURSIVE if rec else 0),
                what=source)
            trees[i] = tree
            flags = linux.AT_EMPTY_PATH | (linux.AT_RECURSIVE if "ridmap" in opts else 0)
            try:
                linux.mount_setattr(tree, "", flags, linux.MOUNT_ATTR_IDMAP, 0, 0, users[key],
                                    what=f"idmap {source}")
            except SysError as e:
                if e.errno in (22, 95):  # EINVAL, EOPNOTSUPP: the filesystem can't be idmapped
                    raise Error(f"mounts[{i}]: the filesystem of {source} does not support "
                                "idmapped mounts") from None
                raise
    except BaseException:
        for fd in trees.values():
            os.close(fd)
        raise
    finally:
        for fd in users.values():
            os.close(fd)
    return trees


def userns_fd(uid_mappings, gid_mappings):
    """An fd of a new user namespace with these mappings."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            linux.unshare(linux.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)  # returns when the parent closes its end
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise Error("idmap: could not create a user namespace for the mapping")
        write_id_maps(pid, uid_mappings, gid_mappings)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)
