"""cffi builder of ``runtime.linux._seccomp``: libseccomp and the seccomp(2) syscall.

A module of its own, apart from ``_sys``, so that only configs with a seccomp
profile pay for loading libseccomp.  libseccomp compiles the profile into a
classic BPF program (at ``prepare`` time, in the runtime process); the program is
installed with seccomp(2) directly, so the container init needs no libseccomp
call and the flags are exactly those the config asks for.
"""

from cffi import FFI

CDEF = r"""
/* libseccomp: <seccomp.h> */
struct scmp_version {
    unsigned int major;
    unsigned int minor;
    unsigned int micro;
};
const struct scmp_version *seccomp_version(void);

typedef void *scmp_filter_ctx;
typedef uint64_t scmp_datum_t;
struct scmp_arg_cmp {
    unsigned int arg;
    int op;
    scmp_datum_t datum_a;
    scmp_datum_t datum_b;
};

#define SCMP_ACT_KILL_PROCESS ...
#define SCMP_ACT_KILL_THREAD ...
#define SCMP_ACT_TRAP ...
#define SCMP_ACT_NOTIFY ...
#define SCMP_ACT_LOG ...
#define SCMP_ACT_ALLOW ...

#define SCMP_CMP_NE ...
#define SCMP_CMP_LT ...
#define SCMP_CMP_LE ...
#define SCMP_CMP_EQ ...
#define SCMP_CMP_GE ...
#define SCMP_CMP_GT ...
#define SCMP_CMP_MASKED_EQ ...

#define SCMP_FLTATR_API_SYSRAWRC ...

#define SCMP_ARCH_X32 ...
#define SCMP_ARCH_X86_64 ...
#define SCMP_ARCH_S390 ...
#define SCMP_ARCH_S390X ...
#define AUDIT_ARCH_X86_64 ...

scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
uint32_t seccomp_arch_native(void);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_attr_set(scmp_filter_ctx ctx, int attr, uint32_t value);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                           unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);

/* the kernel side: <linux/seccomp.h>, <linux/filter.h> */
#define SECCOMP_SET_MODE_FILTER ...
#define SECCOMP_FILTER_FLAG_TSYNC ...
#define SECCOMP_FILTER_FLAG_LOG ...
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW ...
#define SECCOMP_FILTER_FLAG_NEW_LISTENER ...
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH ...
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ...
#define SECCOMP_RET_ERRNO ...
#define SECCOMP_RET_TRACE ...
#define SECCOMP_RET_ACTION_FULL ...
#define SECCOMP_RET_DATA ...
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE ...
#define BPF_LD ...
#define BPF_W ...
#define BPF_ABS ...
#define BPF_JMP ...
#define BPF_JA ...
#define BPF_JEQ ...
#define BPF_JGT ...
#define BPF_JSET ...
#define BPF_K ...
#define BPF_RET ...
#define BPF_MAXINSNS ...
struct sock_filter {
    uint16_t code;
    uint8_t jt;
    uint8_t jf;
    uint32_t k;
};
struct seccomp_data {
    int nr;
    uint32_t arch;
    unsigned long long instruction_pointer;    /* __u64 */
    unsigned long long args[6];
};

/* install ``len`` instructions (native byte order) with seccomp(2) */
long rt_seccomp_set_filter(unsigned int flags, const char *insns, unsigned short len);
/* seccomp(SECCOMP_SET_MODE_FILTER, flags, NULL): EFAULT if the flags are known */
int rt_seccomp_flags_known(unsigned int flags);

/* user notification, for agents and the tests */
struct seccomp_notif {
    uint64_t id;
    uint32_t pid;
    uint32_t flags;
    struct seccomp_data data;
};
struct seccomp_notif_resp {
    uint64_t id;
    int64_t val;
    int32_t error;
    uint32_t flags;
};
int seccomp_notify_alloc(struct seccomp_notif **req, struct seccomp_notif_resp **resp);
void seccomp_notify_free(struct seccomp_notif *req, struct seccomp_notif_resp *resp);
int seccomp_notify_receive(int fd, struct seccomp_notif *req);
int seccomp_notify_respond(int fd, struct seccomp_notif_resp *resp);
"""

SOURCE = r"""
#include <errno.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

static long rt_seccomp_set_filter(unsigned int flags, const char *insns, unsigned short len)
{
    struct sock_fprog prog = { .len = len, .filter = (struct sock_filter *)insns };
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static int rt_seccomp_flags_known(unsigned int flags)
{
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL) < 0 && errno == EFAULT;
}
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("runtime.linux._seccomp", SOURCE, libraries=["seccomp"])

if __name__ == "__main__":
    ffibuilder.compile(verbose=False)
