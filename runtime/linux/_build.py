"""cffi builder of ``runtime.linux._sys``: the one place the runtime meets libc.

API mode (compiled at install time) so that importing it costs a dlopen, not a C
parse, and so constants take their values from the kernel and libc headers under
their own names.  Syscalls glibc does not wrap go through ``syscall(2)``.

The static exec helper (init_helper.c) is compiled here too and embedded in the
extension as ``rt_init_image``, so it can be copied into a sealed memfd without
looking for a file at run time.
"""

import os
import subprocess
import tempfile

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

CDEF = r"""
/* namespaces: <sched.h> */
#define CLONE_NEWNS ...
#define CLONE_NEWUTS ...
#define CLONE_NEWIPC ...
#define CLONE_NEWUSER ...
#define CLONE_NEWPID ...
#define CLONE_NEWNET ...
#define CLONE_NEWCGROUP ...
#define CLONE_NEWTIME ...
int unshare(int flags);
int setns(int fd, int nstype);

/* mounts: <sys/mount.h> with the new mount API of glibc 2.36 */
#define MS_RDONLY ...
#define MS_NOSUID ...
#define MS_NODEV ...
#define MS_NOEXEC ...
#define MS_SYNCHRONOUS ...
#define MS_REMOUNT ...
#define MS_MANDLOCK ...
#define MS_DIRSYNC ...
#define MS_NOSYMFOLLOW ...
#define MS_NOATIME ...
#define MS_NODIRATIME ...
#define MS_BIND ...
#define MS_MOVE ...
#define MS_REC ...
#define MS_SILENT ...
#define MS_POSIXACL ...
#define MS_UNBINDABLE ...
#define MS_PRIVATE ...
#define MS_SLAVE ...
#define MS_SHARED ...
#define MS_RELATIME ...
#define MS_I_VERSION ...
#define MS_STRICTATIME ...
#define MS_LAZYTIME ...
#define MNT_FORCE ...
#define MNT_DETACH ...
#define MNT_EXPIRE ...
#define UMOUNT_NOFOLLOW ...
#define MOUNT_ATTR_RDONLY ...
#define MOUNT_ATTR_NOSUID ...
#define MOUNT_ATTR_NODEV ...
#define MOUNT_ATTR_NOEXEC ...
#define MOUNT_ATTR__ATIME ...
#define MOUNT_ATTR_RELATIME ...
#define MOUNT_ATTR_NOATIME ...
#define MOUNT_ATTR_STRICTATIME ...
#define MOUNT_ATTR_NODIRATIME ...
#define MOUNT_ATTR_IDMAP ...
#define MOUNT_ATTR_NOSYMFOLLOW ...
#define OPEN_TREE_CLONE ...
#define OPEN_TREE_CLOEXEC ...
#define MOVE_MOUNT_F_EMPTY_PATH ...
#define MOVE_MOUNT_T_EMPTY_PATH ...
#define AT_EMPTY_PATH ...
#define AT_RECURSIVE ...
#define AT_SYMLINK_NOFOLLOW ...
#define AT_FDCWD ...
struct mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};
int mount(const char *source, const char *target, const char *fstype,
          unsigned long flags, const void *data);
int umount2(const char *target, int flags);
int rt_pivot_root(const char *new_root, const char *put_old);
int rt_mount_setattr(int dfd, const char *path, unsigned int flags,
                     struct mount_attr *attr, size_t size);
int rt_open_tree(int dfd, const char *path, unsigned int flags);
int rt_move_mount(int from_dfd, const char *from_path, int to_dfd,
                  const char *to_path, unsigned int flags);

/* path resolution confined to a root: <linux/openat2.h> */
#define RESOLVE_NO_XDEV ...
#define RESOLVE_NO_MAGICLINKS ...
#define RESOLVE_NO_SYMLINKS ...
#define RESOLVE_BENEATH ...
#define RESOLVE_IN_ROOT ...
struct open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
int rt_openat2(int dfd, const char *path, struct open_how *how, size_t size);

/* identity: <unistd.h> */
int sethostname(const char *name, size_t len);
int setdomainname(const char *name, size_t len);

/* process attributes: <sys/prctl.h>, <linux/capability.h>, <linux/securebits.h> */
#define PR_SET_PDEATHSIG ...
#define PR_SET_DUMPABLE ...
#define PR_SET_KEEPCAPS ...
#define PR_SET_NAME ...
#define PR_CAPBSET_READ ...
#define PR_CAPBSET_DROP ...
#define PR_SET_SECUREBITS ...
#define PR_GET_SECUREBITS ...
#define PR_SET_NO_NEW_PRIVS ...
#define PR_GET_NO_NEW_PRIVS ...
#define PR_SET_CHILD_SUBREAPER ...
#define PR_CAP_AMBIENT ...
#define PR_CAP_AMBIENT_RAISE ...
#define PR_CAP_AMBIENT_CLEAR_ALL ...
#define _LINUX_CAPABILITY_VERSION_3 ...
#define _LINUX_CAPABILITY_U32S_3 ...
#define CAP_LAST_CAP ...
int prctl(int option, unsigned long arg2, unsigned long arg3,
          unsigned long arg4, unsigned long arg5);
typedef struct {
    uint32_t version;
    int pid;
} rt_cap_header;
typedef struct {
    uint32_t effective;
    uint32_t permitted;
    uint32_t inheritable;
} rt_cap_data;
int rt_capget(rt_cap_header *hdr, rt_cap_data *data);
int rt_capset(rt_cap_header *hdr, rt_cap_data *data);
int personality(unsigned long persona);

/* keyrings: <linux/keyctl.h> */
#define KEYCTL_JOIN_SESSION_KEYRING ...
long rt_keyctl_join(const char *name);

/* file descriptors: <linux/close_range.h> */
#define CLOSE_RANGE_CLOEXEC ...
int rt_close_range(unsigned int first, unsigned int last, unsigned int flags);

/* signals to a pidfd */
int rt_pidfd_send_signal(int pidfd, int sig);

/* sealed executable memfds: <sys/mman.h>, <fcntl.h> */
#define MFD_CLOEXEC ...
#define MFD_ALLOW_SEALING ...
#define F_SEAL_SEAL ...
#define F_SEAL_SHRINK ...
#define F_SEAL_GROW ...
#define F_SEAL_WRITE ...
int memfd_create(const char *name, unsigned int flags);
int rt_memfd_exec(void);

/* scheduling, I/O priority and memory policy */
struct rt_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
};
int rt_sched_setattr(int pid, struct rt_sched_attr *attr, unsigned int flags);
int rt_ioprio_set(int which, int who, int ioprio);
long rt_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode);

/* eBPF (cgroup v2 device programs): attrs are built as bytes by the caller */
#define BPF_PROG_LOAD ...
#define BPF_PROG_ATTACH ...
#define BPF_PROG_DETACH ...
#define BPF_PROG_QUERY ...
#define BPF_PROG_GET_FD_BY_ID ...
#define BPF_PROG_TYPE_CGROUP_DEVICE ...
#define BPF_CGROUP_DEVICE ...
#define BPF_F_ALLOW_MULTI ...
#define BPF_F_REPLACE ...
long rt_bpf(int cmd, void *attr, unsigned int size);

/* the embedded exec helper */
extern const unsigned char rt_init_image[];
extern const size_t rt_init_image_size;
"""

SOURCE = r"""
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/keyctl.h>
#include <linux/openat2.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

typedef struct { uint32_t version; int pid; } rt_cap_header;
typedef struct { uint32_t effective, permitted, inheritable; } rt_cap_data;
struct rt_sched_attr {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
};

static int rt_pivot_root(const char *new_root, const char *put_old)
{ return syscall(SYS_pivot_root, new_root, put_old); }
static int rt_mount_setattr(int dfd, const char *path, unsigned int flags,
                            struct mount_attr *attr, size_t size)
{ return syscall(SYS_mount_setattr, dfd, path, flags, attr, size); }
static int rt_open_tree(int dfd, const char *path, unsigned int flags)
{ return syscall(SYS_open_tree, dfd, path, flags); }
static int rt_move_mount(int from_dfd, const char *from_path, int to_dfd,
                         const char *to_path, unsigned int flags)
{ return syscall(SYS_move_mount, from_dfd, from_path, to_dfd, to_path, flags); }
static int rt_openat2(int dfd, const char *path, struct open_how *how, size_t size)
{ return syscall(SYS_openat2, dfd, path, how, size); }
static int rt_capget(rt_cap_header *hdr, rt_cap_data *data)
{ return syscall(SYS_capget, hdr, data); }
static int rt_capset(rt_cap_header *hdr, rt_cap_data *data)
{ return syscall(SYS_capset, hdr, data); }
static long rt_keyctl_join(const char *name)
{ return syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name); }
static int rt_close_range(unsigned int first, unsigned int last, unsigned int flags)
{ return syscall(SYS_close_range, first, last, flags); }
static int rt_pidfd_send_signal(int pidfd, int sig)
{ return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }
static int rt_sched_setattr(int pid, struct rt_sched_attr *attr, unsigned int flags)
{ return syscall(SYS_sched_setattr, pid, attr, flags); }
static int rt_ioprio_set(int which, int who, int ioprio)
{ return syscall(SYS_ioprio_set, which, who, ioprio); }
static long rt_set_mempolicy(int mode, const unsigned long *nodemask, unsigned long maxnode)
{ return syscall(SYS_set_mempolicy, mode, nodemask, maxnode); }
static long rt_bpf(int cmd, void *attr, unsigned int size)
{ return syscall(SYS_bpf, cmd, attr, size); }

/* A sealed, executable copy of the exec helper. */
static int rt_memfd_exec(void)
{
    unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    int fd = memfd_create("runtime-init", flags | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create("runtime-init", flags);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < rt_init_image_size) {
        ssize_t n = write(fd, rt_init_image + off, rt_init_image_size - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
        goto fail;
    return fd;
fail:
    { int saved = errno; close(fd); errno = saved; }
    return -1;
}
"""


def _helper_image():
    """Compile init_helper.c freestanding and static; return a C array of it."""
    cc = os.environ.get("CC", "gcc")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "runtime-init")
        subprocess.run(
            [cc, "-Os", "-static", "-nostdlib", "-nostartfiles", "-ffreestanding",
             "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fno-pie",
             "-no-pie", "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-s", "-Wall",
             "-o", out, os.path.join(HERE, "init_helper.c")],
            check=True,
        )
        with open(out, "rb") as f:
            data = f.read()
    body = ",".join(str(b) for b in data)
    return (f"const unsigned char rt_init_image[] = {{{body}}};\n"
            f"const size_t rt_init_image_size = {len(data)};\n")


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("runtime.linux._sys", _helper_image() + SOURCE)

if __name__ == "__main__":
    ffibuilder.compile(verbose=False)
