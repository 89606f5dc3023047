"""Errors the CLI turns into one line.

Each error carries its context once, added by the layer that knows it; ``str(e)``
is the line printed on stderr and logged.  Substrings matter: the containerd shim
classifies failures by "does not exist", "container not running" and
"no such process", so those wordings are kept as runc has them.
"""

import os


class Error(Exception):
    """A failure of a runtime operation, reported as one line."""

    #: process exit code for this error
    exit_code = 1


class UsageError(Error):
    """Bad command line (runc prints usage and exits 1 too)."""


class ConfigError(Error):
    """config.json violates the spec: names the field path and the rule."""

    def __init__(self, path, rule, source="config.json"):
        self.path = path
        self.rule = rule
        self.source = source
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__(where + rule)


class NotFound(Error):
    """The container does not exist (the wording the shim matches on)."""

    def __init__(self, cid=None):
        super().__init__("container does not exist")
        self.cid = cid


class Exists(Error):
    def __init__(self, cid):
        super().__init__(f"container with id exists: {cid}")


class StateError(Error):
    """The operation is not allowed in the container's current status."""


class SysError(Error):
    """A system call failed: operation, target and errno, e.g.
    ``mount proc to /proc: operation not permitted``."""

    def __init__(self, op, err, target=None):
        self.op = op
        self.errno = err
        self.target = target
        text = os.strerror(err).lower() if err else "failed"
        where = f"{op} {target}" if target is not None else op
        super().__init__(f"{where}: {text}")

    @classmethod
    def wrap(cls, op, exc, target=None):
        """Turn an OSError into a SysError naming the operation."""
        if target is None:
            target = exc.filename
        return cls(op, exc.errno, target)


class HookError(Error):
    pass


def describe(exc):
    """One line for any exception: errors of the runtime as they are, an OSError
    that no layer wrapped with what and where, anything else as an internal error."""
    if isinstance(exc, Error):
        return str(exc)
    if isinstance(exc, OSError):
        text = (exc.strerror or str(exc)).lower()
        name = exc.filename if isinstance(exc.filename, (str, bytes)) else None
        return f"{os.fsdecode(name)}: {text}" if name else text
    return f"internal error: {type(exc).__name__}: {exc}"
