"""Load a cgroup device program and attach it to a cgroup v2 directory (bpf(2)).

``union bpf_attr`` is laid out here by hand for the three commands used; pointers
in it are the addresses of buffers kept alive for the duration of the call.
"""

import errno
import os
import struct

from .. import linux
from ..errors import SysError
from . import CgroupError

LICENSE = b"Apache\0"


def _addr(buf):
    return int(linux.ffi.cast("uintptr_t", linux.ffi.from_buffer(buf)))


def load_program(code):
    """BPF_PROG_LOAD a BPF_PROG_TYPE_CGROUP_DEVICE program; returns its fd.
    On a verifier rejection the kernel's log is put in the error."""
    insns = bytearray(code)
    lic = bytearray(LICENSE)
    for log_level in (0, 1):
        log = bytearray(65536 if log_level else 0)
        attr = bytearray(128)
        # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf
        struct.pack_into("<IIQQIIQ", attr, 0, linux.BPF_PROG_TYPE_CGROUP_DEVICE,
                         len(insns) // 8, _addr(insns), _addr(lic), log_level,
                         len(log), _addr(log) if log else 0)
        struct.pack_into("16s", attr, 48, b"runtime_devices")
        try:
            return linux.bpf(linux.BPF_PROG_LOAD, attr, "bpf load device program")
        except SysError as e:
            if e.errno != errno.EACCES and e.errno != errno.EINVAL or log_level:
                detail = log.split(b"\0", 1)[0].decode(errors="replace").strip()
                detail = detail.splitlines()[-1] if detail else ""
                raise CgroupError(f"cgroup: load device eBPF program: {e}"
                                  + (f" ({detail})" if detail else "")) from None


def query_programs(cgroup_fd):
    """The ids of the device programs attached to a cgroup."""
    ids = bytearray(4 * 64)
    attr = bytearray(40)
    struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, linux.BPF_CGROUP_DEVICE, 0, 0,
                     _addr(ids), 64)
    linux.bpf(linux.BPF_PROG_QUERY, attr, "bpf query device programs")
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(struct.unpack_from(f"<{count}I", ids, 0))


def program_fd(prog_id):
    attr = bytearray(16)
    struct.pack_into("<I", attr, 0, prog_id)
    return linux.bpf(linux.BPF_PROG_GET_FD_BY_ID, attr, "bpf get program")


def attach(cgroup_fd, prog_fd, flags):
    attr = bytearray(20)
    struct.pack_into("<IIIII", attr, 0, cgroup_fd, prog_fd, linux.BPF_CGROUP_DEVICE, flags, 0)
    linux.bpf(linux.BPF_PROG_ATTACH, attr, "bpf attach device program")


def detach(cgroup_fd, prog_fd):
    attr = bytearray(20)
    struct.pack_into("<IIIII", attr, 0, cgroup_fd, prog_fd, linux.BPF_CGROUP_DEVICE, 0, 0)
    linux.bpf(linux.BPF_PROG_DETACH, attr, "bpf detach device program")


def install(path, code):
    """Attach ``code`` to the cgroup at ``path``, then detach the device programs
    that were there: while both are attached both must allow an access, so the
    container is never less confined than either rule set."""
    cg = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            old = query_programs(cg)
        except SysError:
            old = []
        prog = load_program(code)
        try:
            attach(cg, prog, linux.BPF_F_ALLOW_MULTI)
        finally:
            os.close(prog)
        for prog_id in old:
            try:
                fd = program_fd(prog_id)
            except SysError:
                continue
            try:
                detach(cg, fd)
            except SysError:
                pass
            finally:
                os.close(fd)
    finally:
        os.close(cg)
