"""A foreground ``run`` or ``exec``: the runtime stays as the process's supervisor,
passes signals on, reaps its children, and exits with the process's exit code.

Signals that come before the process runs its program (during create and start)
are queued and passed on once it does: until then the container's pid 1 is the
exec helper, which has no handlers, so the kernel would drop them.  A signal that
asks to stop (TERM, INT, HUP, QUIT) and comes before start makes ``run`` give up
instead: the program never runs (as pid 1 without its handlers yet, it would not
die of the signal either), and run exits 128+n.
"""

import _signal
import os

from . import linux
from .errors import Error

STOPPING = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP, _signal.SIGQUIT)

# SIGWINCH is the terminal proxy's own business (console.proxy), SIGCHLD ours.
FORWARDED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM",
             "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGPWR")


class Supervisor:
    def __init__(self):
        self.queue = []
        self.pid = 0
        self.pidfd = None
        self.status = None
        for name in FORWARDED:
            _signal.signal(getattr(_signal, name), self._on_signal)

    def _on_signal(self, signum, _frame):
        if self.pidfd is None:
            self.queue.append(signum)
        else:
            self._send(signum)

    def _send(self, signum):
        try:
            linux.pidfd_send_signal(self.pidfd, signum)
        except Error:
            pass  # it is gone: wait() will tell

    def stop_requested(self):
        """The first queued signal that asks to stop, or None."""
        return next((signum for signum in self.queue if signum in STOPPING), None)

    def forward_to(self, pid):
        """The process now runs its program: queued signals go to it, then all."""
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        queued, self.queue = self.queue, []
        for signum in queued:
            self._send(signum)

    def wait(self, master_fd=None, no_subreaper=False):
        """Proxy the terminal if there is one, reap every child (orphans of the
        container are ours while we are its subreaper) and return the process's
        exit code, 128+n for death by signal n."""
        if no_subreaper:
            linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 0, what="stop being subreaper")
        try:
            if master_fd is not None:
                from . import console

                _signal.signal(_signal.SIGCHLD, lambda *_: self._reap(block=False))
                try:
                    console.proxy(master_fd, self.pidfd)
                finally:
                    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
            while self.status is None:
                if not self._reap(block=True):
                    break
            self._reap(block=False)
        finally:
            os.close(self.pidfd)
            if master_fd is not None:
                os.close(master_fd)
        status = self.status
        if status is None:
            return 255
        return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)

    def _reap(self, block):
        """Reap children; the supervised process's status is kept.  Returns False
        when there are no children left."""
        while True:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.pid:
                self.status = status
                if block:
                    return True
