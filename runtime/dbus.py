"""A minimal D-Bus client: enough of the wire protocol to call systemd's manager.

It speaks the D-Bus specification's little-endian marshalling (every basic type,
arrays, structs, dict entries, variants), authenticates with EXTERNAL (the caller's
uid), sends method calls and reads their replies, and keeps the signals that arrive
meanwhile for ``wait_signal``.  No threads, no main loop: one blocking socket with
deadlines, as a short-lived command needs.

Values map to Python as: integers and booleans as int/bool, strings, object paths
and signatures as str, arrays as lists (``a{..}`` as dicts), structs as tuples, and a
variant as a ``Variant(signature, value)`` when sent; received variants are unwrapped
to their value.
"""

import os
import select
import socket
import struct
import time

from .errors import Error

SYSTEM_BUS = "/run/dbus/system_bus_socket"

#: Seconds without a reply after which the peer is poked with a one-way Ping.
#: Seen with systemd 252 on its private socket: when it is busy (stopping the unit
#: of a container that has just exited) as a client connects, the BEGIN of the
#: authentication and the first call can reach it in one read, and it leaves that
#: call unread until more data comes: about one ``run`` in ten then waited out the
#: whole timeout.  A one-way Ping is such data, and harmless.
POKE_AFTER = 0.5

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 0x1

# header field codes
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE = range(1, 9)
_FIELD_TYPES = {PATH: "o", INTERFACE: "s", MEMBER: "s", ERROR_NAME: "s", REPLY_SERIAL: "u",
                DESTINATION: "s", SENDER: "s", SIGNATURE: "g", 9: "u"}

_FIXED = {"y": ("B", 1), "b": ("I", 4), "n": ("h", 2), "q": ("H", 2), "i": ("i", 4),
          "u": ("I", 4), "x": ("q", 8), "t": ("Q", 8), "d": ("d", 8), "h": ("I", 4)}
_ALIGN = {"s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1}


class DBusError(Error):
    """An error reply (``name`` is the D-Bus error name) or a broken connection."""

    def __init__(self, msg, name=""):
        super().__init__(msg)
        self.name = name


class Variant:
    __slots__ = ("signature", "value")

    def __init__(self, signature, value):
        self.signature = signature
        self.value = value

    def __repr__(self):
        return f"Variant({self.signature!r}, {self.value!r})"


def split_signature(sig):
    """The complete types of a signature: "sa(sv)" -> ["s", "a(sv)"]."""
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _type_end(sig, i):
    c = sig[i]
    if c == "a":
        return _type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        j = i + 1
        while sig[j] != close:
            j = _type_end(sig, j)
        return j + 1
    if c in _FIXED or c in "sogv":
        return i + 1
    raise ValueError(f"bad D-Bus signature {sig!r}")


def _alignment(t):
    return _FIXED[t[0]][1] if t[0] in _FIXED else _ALIGN[t[0]]


# -- marshalling ------------------------------------------------------------------
class _Writer:
    def __init__(self):
        self.buf = bytearray()

    def pad(self, n):
        self.buf += b"\0" * (-len(self.buf) % n)

    def write(self, t, v):
        c = t[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.pad(size)
            self.buf += struct.pack("<" + fmt, v)
        elif c in "so":
            data = v.encode()
            self.pad(4)
            self.buf += struct.pack("<I", len(data)) + data + b"\0"
        elif c == "g":
            data = v.encode()
            self.buf += bytes([len(data)]) + data + b"\0"
        elif c == "v":
            self.write("g", v.signature)
            self.write(v.signature, v.value)
        elif c == "(":
            self.pad(8)
            for sub, item in zip(split_signature(t[1:-1]), v, strict=True):
                self.write(sub, item)
        elif c == "a":
            elem = t[1:]
            self.pad(4)
            at = len(self.buf)
            self.buf += b"\0\0\0\0"
            self.pad(_alignment(elem))
            start = len(self.buf)
            if elem[0] == "{":
                key_t, val_t = split_signature(elem[1:-1])
                for key, val in (v.items() if isinstance(v, dict) else v):
                    self.pad(8)
                    self.write(key_t, key)
                    self.write(val_t, val)
            elif elem == "y" and isinstance(v, (bytes, bytearray)):
                self.buf += v
            else:
                for item in v:
                    self.write(elem, item)
            struct.pack_into("<I", self.buf, at, len(self.buf) - start)
        else:
            raise ValueError(f"cannot marshal D-Bus type {t!r}")


class _Reader:
    def __init__(self, buf, pos=0):
        self.buf = buf
        self.pos = pos

    def pad(self, n):
        self.pos += -self.pos % n

    def read(self, t):
        c = t[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.pad(size)
            (v,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
            self.pos += size
            return bool(v) if c == "b" else v
        if c in "so":
            n = self.read("u")
            v = bytes(self.buf[self.pos:self.pos + n]).decode()
            self.pos += n + 1
            return v
        if c == "g":
            n = self.buf[self.pos]
            v = bytes(self.buf[self.pos + 1:self.pos + 1 + n]).decode()
            self.pos += n + 2
            return v
        if c == "v":
            return self.read(self.read("g"))
        if c == "(":
            self.pad(8)
            return tuple(self.read(sub) for sub in split_signature(t[1:-1]))
        if c == "a":
            n = self.read("u")
            elem = t[1:]
            self.pad(_alignment(elem))
            end = self.pos + n
            if elem[0] == "{":
                key_t, val_t = split_signature(elem[1:-1])
                out = {}
                while self.pos < end:
                    self.pad(8)
                    key = self.read(key_t)
                    out[key] = self.read(val_t)
                return out
            items = []
            while self.pos < end:
                items.append(self.read(elem))
            return items
        raise ValueError(f"cannot unmarshal D-Bus type {t!r}")


def marshal(signature, values):
    w = _Writer()
    for t, v in zip(split_signature(signature), values, strict=True):
        w.write(t, v)
    return bytes(w.buf)


def unmarshal(signature, data):
    r = _Reader(data)
    return [r.read(t) for t in split_signature(signature)]


class Message:
    __slots__ = ("type", "flags", "serial", "fields", "body")

    def __init__(self, type_, flags, serial, fields, body):
        self.type = type_
        self.flags = flags
        self.serial = serial
        self.fields = fields
        self.body = body

    def encode(self, signature="", args=()):
        body = marshal(signature, args) if signature else b""
        fields = dict(self.fields)
        if signature:
            fields[SIGNATURE] = signature
        w = _Writer()
        w.buf += struct.pack("<cBBBII", b"l", self.type, self.flags, 1, len(body), self.serial)
        w.write("a(yv)", [(code, Variant(_FIELD_TYPES[code], value))
                          for code, value in sorted(fields.items())])
        w.pad(8)
        return bytes(w.buf) + body


def _decode(buf):
    """One message from the start of ``buf``: (Message, length), or None if it is
    not complete yet."""
    if len(buf) < 16:
        return None
    if buf[0:1] != b"l":
        raise DBusError("D-Bus: big-endian messages are not supported")
    type_, flags, _, body_len, serial, fields_len = struct.unpack_from("<BBBIII", buf, 1)
    header_end = 16 + fields_len
    header_end += -header_end % 8
    total = header_end + body_len
    if len(buf) < total:
        return None
    r = _Reader(buf, 12)
    fields = dict(r.read("a(yv)"))
    sig = fields.get(SIGNATURE, "")
    body = unmarshal(sig, buf[header_end:total]) if sig else []
    return Message(type_, flags, serial, fields, body), total


# -- the connection -----------------------------------------------------------------
class Connection:
    """One authenticated connection: to a bus (``bus=True``, then Hello is sent) or
    straight to a peer such as systemd's private socket."""

    def __init__(self, path, bus=True, timeout=30.0):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.serial = 0
        self.buf = bytearray()
        self.pending_signals = []
        self.unique_name = None
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
            self._auth()
            self.sock.setblocking(False)
            if bus:
                self.unique_name = self.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                             "org.freedesktop.DBus", "Hello")[0]
        except OSError as e:
            self.sock.close()
            raise DBusError(f"D-Bus: connect to {path}: {os.strerror(e.errno) if e.errno else e}"
                            ) from None
        except Exception:
            self.sock.close()
            raise

    def _auth(self):
        uid = str(os.geteuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = self.sock.recv(256)
            if not chunk:
                raise DBusError("D-Bus: the peer closed the connection during authentication")
            reply += chunk
        if not reply.startswith(b"OK "):
            raise DBusError(f"D-Bus: authentication refused: {reply.decode(errors='replace').strip()}")
        self.sock.sendall(b"BEGIN\r\n")

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, destination, path, interface, member, signature="", args=(),
             timeout=None):
        """Call a method and return its reply's body (a list); an error reply raises
        DBusError with the error's name and message."""
        serial = self._send_call(destination, path, interface, member, signature, args)
        deadline = time.monotonic() + (timeout or self.timeout)
        what = f"the reply to {member}"
        while True:
            m = self._receive(min(deadline, time.monotonic() + POKE_AFTER), what)
            if m is None:
                if time.monotonic() >= deadline:
                    raise DBusError(f"D-Bus: timed out waiting for {what}")
                # a one-way Ping: new data makes the peer read again (see POKE_AFTER)
                self._send_call("", "/", "org.freedesktop.DBus.Peer", "Ping",
                                flags=NO_REPLY_EXPECTED)
                continue
            if m.type in (METHOD_RETURN, ERROR) and m.fields.get(REPLY_SERIAL) == serial:
                if m.type == ERROR:
                    name = m.fields.get(ERROR_NAME, "")
                    text = m.body[0] if m.body and isinstance(m.body[0], str) else name
                    raise DBusError(f"{member}: {text}", name)
                return m.body
            if m.type == SIGNAL:
                self.pending_signals.append(m)

    def wait_signal(self, match, deadline, what):
        """The first signal (already received or still to come) for which
        ``match(message)`` is true; DBusError when ``deadline`` passes."""
        for i, m in enumerate(self.pending_signals):
            if match(m):
                return self.pending_signals.pop(i)
        while True:
            m = self._receive(deadline, what)
            if m is None:
                raise DBusError(f"D-Bus: timed out waiting for {what}")
            if m.type == SIGNAL:
                if match(m):
                    return m
                self.pending_signals.append(m)

    def _send(self, data):
        view = memoryview(data)
        while view:
            try:
                n = self.sock.send(view)
            except BlockingIOError:
                select.select([], [self.sock], [], self.timeout)
                continue
            except OSError as e:
                raise DBusError(f"D-Bus: send: {os.strerror(e.errno)}") from None
            view = view[n:]

    def _send_call(self, destination, path, interface, member, signature="", args=(),
                   flags=0):
        """Send a method call; returns its serial."""
        self.serial += 1
        fields = {PATH: path, INTERFACE: interface, MEMBER: member}
        if destination:
            fields[DESTINATION] = destination
        self._send(Message(METHOD_CALL, flags, self.serial, fields, None).encode(signature, args))
        return self.serial

    def _receive(self, deadline, what):
        """The next message, or None once ``deadline`` passes (``what`` names it
        in the error if the peer closes the connection)."""
        while True:
            got = _decode(self.buf)
            if got is not None:
                msg, n = got
                del self.buf[:n]
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                raise DBusError(f"D-Bus: receive: {os.strerror(e.errno)}") from None
            if not chunk:
                raise DBusError(f"D-Bus: the connection closed while waiting for {what}")
            self.buf += chunk
