"""linux.netDevices: a host device moved into the container, renamed, with its
permanent global address, up."""

import subprocess
import uuid

import pytest

from support import run

pytestmark = pytest.mark.integration


@pytest.fixture
def veth():
    name = "rt" + uuid.uuid4().hex[:8]
    peer = name + "p"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer], check=True)
    subprocess.run(["ip", "addr", "add", "10.231.7.1/24", "dev", name], check=True)
    yield name
    for dev in (name, peer):
        subprocess.run(["ip", "link", "del", dev], capture_output=True)


def test_device_moved_renamed_with_address_and_up(runtime, bundle, veth):
    bundle.sh("ip -o addr show dev ctr0; cat /sys/class/net/ctr0/operstate /sys/class/net/ctr0/flags")
    bundle.config["linux"]["netDevices"] = {veth: {"name": "ctr0"}}
    out = run(runtime, bundle).stdout
    assert "inet 10.231.7.1/24" in out
    flags = int(out.split()[-1], 16)
    assert flags & 0x1, "IFF_UP"
    host = subprocess.run(["ip", "link", "show", veth], capture_output=True, text=True)
    assert host.returncode != 0, "the device left the host namespace"


def test_name_taken_in_container_fails_and_leaves_device(runtime, bundle, veth):
    bundle.config["linux"]["netDevices"] = {veth: {"name": "lo"}}
    res = run(runtime, bundle, check=False)
    assert res.returncode == 1
    assert "already exists in the container's network namespace" in res.stderr
    assert subprocess.run(["ip", "link", "show", veth], capture_output=True).returncode == 0
    assert runtime.ids() == []


def test_missing_device_is_an_error(runtime, bundle):
    bundle.config["linux"]["netDevices"] = {"nosuchdev0": {}}
    res = run(runtime, bundle, check=False)
    assert res.returncode == 1 and "no network device 'nosuchdev0' on the host" in res.stderr
    assert runtime.ids() == []
