"""The Kubernetes path: containerd's CRI plugin with a runtime handler of type
io.containerd.runc.v2 whose options set BinaryName (the snippet in docs/clients.md),
selected the way a RuntimeClass selects it: RunPodSandbox(runtime_handler=...).

The CRI client (cri_client.py) needs the grpc module: this interpreter's, or Debian's
python3-grpcio under /usr/bin/python3; without either the scenario test is skipped.
"""

import json
import os

import pytest

from e2elib import CRI_NAMESPACE, IMAGE, find_python_with_grpc, run, split_global

pytestmark = pytest.mark.e2e
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cri_client.py")


def test_cri_plugin_loads_with_the_handler_config(e2e):
    r = e2e.ctr("plugins", "ls", check=True)
    rows = [line.split() for line in r.stdout.splitlines()]
    cri = [row for row in rows if len(row) >= 4 and row[1] == "cri"]
    assert cri and cri[0][-1] == "ok", r.stdout + e2e.containerd_log_tail()


def test_cri_pod_through_runtime_handler(e2e):
    python = find_python_with_grpc()
    if python is None:
        pytest.skip("no grpc module (apt-get install python3-grpcio)")
    r = run([python, CLIENT, e2e.ctd_sock, e2e.cri_handler, IMAGE, e2e.cri_cgroup_parent],
            timeout=120)
    assert r.returncode == 0, r.stderr + "\n" + e2e.containerd_log_tail()
    seen = json.loads(r.stdout)
    assert seen["runtime_name"] == "containerd"
    lines = seen["exec"]["stdout"].splitlines()
    assert lines[0] == "from-cri"                        # env from the CRI config
    # NamespaceOption pid = POD: the container joined the sandbox's pid namespace
    # (by path, in config.json), so pid 1 is the pause process
    assert lines[2].startswith("/bin/sleep\0")
    assert seen["exec"]["exit_code"] == 0
    assert seen["exec_exit"]["exit_code"] == 3
    assert seen["state"] == 2 and seen["exit_code"] == 143  # CONTAINER_EXITED via TERM

    # Both the pause container and the workload went through the handler's
    # BinaryName (our wrapper) with the handler's Root option.
    root = f"{e2e.cri_runc_root}/{CRI_NAMESPACE}"
    ids = {seen["pod"]: "sandbox", seen["container"]: "container"}
    for cid in ids:
        calls = e2e.calls(containing=cid)
        assert calls, f"the {ids[cid]} never reached the runtime under test"
        for c in calls:
            assert split_global(c["argv"])[0][:2] == ["--root", root]
        subs = [split_global(c["argv"])[1] for c in calls]
        assert subs[:2] == ["create", "start"], subs
        assert "delete" in subs
    subs = [split_global(c["argv"])[1] for c in e2e.calls(containing=seen["container"])]
    assert subs.count("exec") == 2
