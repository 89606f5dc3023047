"""runtime/dbus.py: the wire format (byte-exact against the D-Bus specification's
rules, and round trips), and a real conversation with a dbus-daemon."""

import os
import shutil
import struct
import subprocess
import time

import pytest

from runtime import dbus
from runtime.dbus import Variant, marshal, split_signature, unmarshal


def test_split_signature():
    assert split_signature("ssa(sv)a(sa(sv))") == ["s", "s", "a(sv)", "a(sa(sv))"]
    assert split_signature("a{sv}uoss") == ["a{sv}", "u", "o", "s", "s"]
    with pytest.raises(ValueError):
        split_signature("z")


def test_basic_types_are_aligned_as_the_spec_says():
    # a byte, then a uint32 padded to 4, then a string: length, bytes, NUL
    assert marshal("yus", (1, 2, "ab")) == (b"\x01\0\0\0" + struct.pack("<I", 2)
                                           + struct.pack("<I", 2) + b"ab\0")
    # a uint64 is aligned to 8; a boolean is a uint32
    assert marshal("yt", (7, 1 << 40)) == b"\x07" + b"\0" * 7 + struct.pack("<Q", 1 << 40)
    assert marshal("b", (True,)) == struct.pack("<I", 1)
    # a signature has a one-byte length
    assert marshal("g", ("as",)) == b"\x02as\0"


def test_array_length_excludes_the_padding_before_its_elements():
    # array of struct(ss): length (4 bytes), padding to 8, then the elements
    data = marshal("a(ss)", ([("a", "b")],))
    (length,) = struct.unpack_from("<I", data)
    assert data[4:8] == b"\0\0\0\0"
    assert length == len(data) - 8
    # an empty array of 8-aligned elements still has the padding
    assert marshal("a(ss)", ([],)) == b"\0" * 8


def test_variant_and_nested_containers_round_trip():
    props = [("Description", Variant("s", "x")), ("PIDs", Variant("au", [1, 2])),
             ("Delegate", Variant("b", True)), ("MemoryMax", Variant("t", 1 << 33)),
             ("AllowedCPUs", Variant("ay", b"\x05"))]
    sig = "ssa(sv)a(sa(sv))"
    data = marshal(sig, ("u.scope", "replace", props, []))
    name, mode, got, aux = unmarshal(sig, data)
    assert (name, mode, aux) == ("u.scope", "replace", [])
    assert got == [("Description", "x"), ("PIDs", [1, 2]), ("Delegate", True),
                   ("MemoryMax", 1 << 33), ("AllowedCPUs", [5])]
    assert unmarshal("a{sv}", marshal("a{sv}", ({"k": Variant("i", -3)},))) == [{"k": -3}]


def test_message_header_round_trip():
    msg = dbus.Message(dbus.METHOD_CALL, 0, 7, {dbus.PATH: "/a", dbus.MEMBER: "M",
                                                 dbus.INTERFACE: "x.y"}, None)
    data = msg.encode("su", ("hi", 3))
    assert dbus._decode(data[:-1]) is None  # incomplete
    got, n = dbus._decode(data + b"rest")
    assert n == len(data)
    assert got.serial == 7 and got.fields[dbus.MEMBER] == "M" and got.body == ["hi", 3]


@pytest.fixture
def bus(tmp_path):
    daemon = shutil.which("dbus-daemon")
    if not daemon:
        pytest.skip("dbus-daemon is not installed")
    path = tmp_path / "bus"
    config = tmp_path / "bus.conf"
    config.write_text(
        "<busconfig><type>custom</type>"
        f"<listen>unix:path={path}</listen><auth>EXTERNAL</auth>"
        "<policy context='default'><allow send_destination='*' eavesdrop='true'/>"
        "<allow eavesdrop='true'/><allow own='*'/></policy></busconfig>")
    proc = subprocess.Popen([daemon, "--nofork", "--nopidfile", f"--config-file={config}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not path.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "dbus-daemon did not start"
            time.sleep(0.01)
        yield str(path)
    finally:
        proc.kill()
        proc.wait()


def test_a_conversation_with_dbus_daemon(bus):
    with dbus.Connection(bus, bus=True, timeout=10) as c:
        assert c.unique_name.startswith(":")
        names = c.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       "ListNames")[0]
        assert "org.freedesktop.DBus" in names and c.unique_name in names
        # a dict of variants comes back from the daemon itself
        creds = c.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       "GetConnectionCredentials", "s", (c.unique_name,))[0]
        assert creds["ProcessID"] == os.getpid() and creds["UnixUserID"] == os.geteuid()
        # an error reply carries its name
        with pytest.raises(dbus.DBusError) as e:
            c.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                   "GetNameOwner", "s", ("no.such.name",))
        assert e.value.name == "org.freedesktop.DBus.Error.NameHasNoOwner"
        # a signal: NameAcquired was sent to us after Hello
        got = c.wait_signal(lambda m: m.fields.get(dbus.MEMBER) == "NameAcquired",
                            time.monotonic() + 5, "NameAcquired")
        assert got.body == [c.unique_name]


def test_connect_to_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(dbus.DBusError, match="connect to .*/none: No such file"):
        dbus.Connection(str(tmp_path / "none"))
