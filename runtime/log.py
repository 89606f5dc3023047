"""runc-style logging: ``--log FILE``, ``--log-format text|json``, ``--debug``.

Without ``--log`` log lines go to stderr in text format, as runc's do.  The
containerd shim reads the JSON lines of ``--log`` and shows the last ``error``
message as the failure, so each error is exactly one line.
"""

import os
import sys
import time

from . import jsonfast

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


def _timestamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Log:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path = path
        self.json = fmt == "json"
        self.threshold = _LEVELS["debug" if debug else "info"]
        self._fd = None

    @property
    def to_file(self):
        return bool(self.path) and self.path not in ("/dev/stderr", "-")

    def _out(self):
        if self._fd is None:
            if self.to_file:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                   0o644)
            else:
                self._fd = 2
        return self._fd

    def write(self, level, msg):
        if _LEVELS[level] < self.threshold:
            return
        if self.json:
            line = jsonfast.dumps({"level": level, "msg": msg, "time": _timestamp()})
        else:
            line = f"time=\"{_timestamp()}\" level={level} msg={_quote(msg)}"
        try:
            os.write(self._out(), (line + "\n").encode())
        except OSError:
            pass

    def debug(self, msg):
        self.write("debug", msg)

    def info(self, msg):
        self.write("info", msg)

    def warning(self, msg):
        self.write("warning", msg)

    def error(self, msg):
        """Log an error; with a log file the plain message goes to stderr too."""
        self.write("error", msg)
        if self.to_file:
            try:
                sys.stderr.write(msg + "\n")
                sys.stderr.flush()
            except OSError:
                pass


#: the process-wide log, configured by the CLI
log = Log()


def configure(path, fmt, debug):
    log.path, log.json = path, fmt == "json"
    log.threshold = _LEVELS["debug" if debug else "info"]
    log._fd = None
