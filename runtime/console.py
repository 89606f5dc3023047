"""process.terminal: a pty made inside the container, its master sent over the
console socket with SCM_RIGHTS (as runc does), and the foreground proxy that
``runtime run`` uses when nobody else holds the master."""

import _socket
import fcntl
import os
import struct
import termios

from . import linux
from .errors import Error, SysError


def connect(path):
    """Connect to --console-socket (in the runtime, before the container starts)."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise SysError("connect to console socket", e.errno, path) from None
    return s.detach()


def send_fd(sock_fd, fd, name):
    s = _socket.socket(fileno=sock_fd)
    try:
        s.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])
    finally:
        s.detach()


def recv_fd(sock_fd):
    """Receive one fd sent with send_fd (or by any runc-compatible runtime)."""
    s = _socket.socket(fileno=sock_fd)
    try:
        msg, anc, _, _ = s.recvmsg(4096, _socket.CMSG_SPACE(4))
    finally:
        s.detach()
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            return struct.unpack("i", data[:4])[0]
    raise Error("console socket: no file descriptor received")


def setup_in_container(sock_fd, size=None, clear_onlcr=False):
    """In the init, after pivot_root: make a pty of the container's devpts, bind
    its slave over /dev/console, make it the controlling terminal and stdio, and
    send the master away.  ``clear_onlcr``: the runtime itself copies the master to
    a stdout that is not a terminal (a file, a pipe), where what the program prints
    must arrive byte for byte as it would without a pty; to a terminal (put in raw
    mode) the pty's own \r\n is what keeps lines apart."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise SysError("open", e.errno, "/dev/ptmx") from None
    try:
        fcntl.ioctl(master, linux.TIOCSPTLCK, struct.pack("i", 0))
        num = struct.unpack("I", fcntl.ioctl(master, linux.TIOCGPTN, b"\0\0\0\0"))[0]
        slave_path = f"/dev/pts/{num}"
        if size:
            set_size(master, size.get("height", 0), size.get("width", 0))
        # The peer of this very master, not whatever /dev/pts/N names by then.
        slave = fcntl.ioctl(master, linux.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
        if clear_onlcr:
            attrs = termios.tcgetattr(slave)
            attrs[1] &= ~termios.ONLCR
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
        if os.path.exists("/dev/console"):
            linux.mount(f"/proc/self/fd/{slave}", "/dev/console", None, linux.MS_BIND,
                        what=f"bind {slave_path} to /dev/console")
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)
        fcntl.ioctl(0, linux.TIOCSCTTY, 0)
        send_fd(sock_fd, master, "/dev/ptmx")
    finally:
        os.close(master)
    os.close(sock_fd)


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def proxy(master, pidfd):
    """Copy stdin to the pty master and the master to stdout until the container's
    process exits (``pidfd`` readable); the local terminal is raw meanwhile."""
    import select
    import signal

    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        raw = termios.tcgetattr(0)
        raw[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
        raw[1] &= ~termios.OPOST
        raw[2] = (raw[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
        raw[6][termios.VMIN], raw[6][termios.VTIME] = 1, 0
        termios.tcsetattr(0, termios.TCSAFLUSH, raw)

        def resize(*_):
            rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
            set_size(master, rows, cols)

        resize()
        signal.signal(signal.SIGWINCH, resize)
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    stdin_open = True
    poller.register(0, select.POLLIN)
    try:
        while True:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            done = False
            for fd, ev in events:
                if fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if data:
                        _write_all(1, data)
                    else:
                        poller.unregister(master)
                elif fd == 0 and stdin_open:
                    data = os.read(0, 65536) if ev & (select.POLLIN | select.POLLHUP) else b""
                    if data:
                        _write_all(master, data)
                    else:
                        stdin_open = False
                        poller.unregister(0)
                elif fd == pidfd:
                    done = True
            if done:
                _drain(master)
                return
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _drain(master):
    os.set_blocking(master, False)
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        _write_all(1, data)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[n:]
