#!/usr/bin/env python3
"""A tiny CRI client: what the kubelet does to run one container in one pod, through
containerd's CRI plugin and a runtime handler (the RuntimeClass path).

    cri_client.py SOCKET HANDLER IMAGE CGROUP_PARENT

prints one JSON object with what it observed.  Needs only the ``grpc`` module (Debian:
python3-grpcio); the few CRI messages (k8s.io/cri-api runtime/v1) are encoded by hand.
"""

import json
import sys

import grpc

SERVICE = "/runtime.v1.RuntimeService/"
NODE = 2  # NamespaceMode: the host's network namespace, so no CNI is needed


# ------------------------------------------------------------- protobuf, by hand

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _bytes(num, data):
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def s(num, text):
    return _bytes(num, text.encode())


def m(num, *parts):
    return _bytes(num, b"".join(parts))


def i(num, value):
    return _varint(num << 3) + _varint(value) if value else b""


def decode(data):
    """{field number: [values]}: ints for varints, bytes for length-delimited."""
    fields = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _read_varint(data, pos)
        elif wt == 2:
            n, pos = _read_varint(data, pos)
            val, pos = data[pos:pos + n], pos + n
        elif wt == 1:
            val, pos = data[pos:pos + 8], pos + 8
        elif wt == 5:
            val, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wt}")
        fields.setdefault(num, []).append(val)
    return fields


def _read_varint(data, pos):
    shift = result = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def first(fields, num, default=b""):
    return fields.get(num, [default])[0]


def int32(v):
    return v - (1 << 64) if v >= 1 << 63 else v


# ------------------------------------------------------------------- the scenario

def main(sock, handler, image, cgroup_parent):
    channel = grpc.insecure_channel(f"unix://{sock}")

    def call(method, request, timeout=60):
        return decode(channel.unary_unary(SERVICE + method)(request, timeout=timeout))

    seen = {}
    version = call("Version", s(1, "v1"))
    seen["runtime_name"] = first(version, 2).decode()
    seen["runtime_version"] = first(version, 3).decode()

    pod_config = b"".join([
        m(1, s(1, "e2e-pod"), s(2, "e2e-pod-uid"), s(3, "default")),   # metadata
        m(8, s(1, cgroup_parent),                                       # linux
          m(2, m(1, i(1, NODE)))),             # security_context.namespace_options
    ])
    pod = first(call("RunPodSandbox", m(1, pod_config) + s(2, handler)), 1).decode()
    seen["pod"] = pod
    try:
        container_config = b"".join([
            m(1, s(1, "e2e-ctr")),                                      # metadata
            m(2, s(1, image)),                                          # image
            s(3, "sh"), s(3, "-c"),
            s(3, "trap 'exit 143' TERM; echo $E2E_VAR > /tmp/env; sleep 100000 & wait"),
            m(6, s(1, "E2E_VAR"), s(2, "from-cri")),                    # envs
        ])
        cid = first(call("CreateContainer", s(1, pod) + m(2, container_config)
                         + m(3, pod_config)), 1).decode()
        seen["container"] = cid
        call("StartContainer", s(1, cid))

        def exec_sync(*cmd):
            req = s(1, cid) + b"".join(s(2, c) for c in cmd) + i(3, 20)
            resp = call("ExecSync", req)
            return {"stdout": first(resp, 1).decode(), "stderr": first(resp, 2).decode(),
                    "exit_code": int32(first(resp, 3, 0))}

        seen["exec"] = exec_sync("sh", "-c", "cat /tmp/env; echo $$; cat /proc/1/cmdline")
        seen["exec_exit"] = exec_sync("sh", "-c", "exit 3")

        call("StopContainer", s(1, cid) + i(2, 10))
        status = call("ContainerStatus", s(1, cid))
        st = decode(first(status, 1))          # ContainerStatus
        seen["state"] = first(st, 3, 0)        # 2 = CONTAINER_EXITED
        seen["exit_code"] = int32(first(st, 7, 0))
        call("RemoveContainer", s(1, cid))
    finally:
        call("StopPodSandbox", s(1, pod))
        call("RemovePodSandbox", s(1, pod))
    channel.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main(*sys.argv[1:5])
