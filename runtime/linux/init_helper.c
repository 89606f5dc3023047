/*
 * runtime-init: the last program the runtime runs inside a container before the
 * user's one.  The Python init process sets the container up, then execs this
 * helper from a sealed memfd, so that:
 *
 *  - a created container waits for `start` in a process of a few KiB instead of
 *    a Python interpreter (created-container RSS);
 *  - /proc/<pid>/exe of anything the runtime runs inside the container is a sealed
 *    anonymous file, never a host binary a container could reopen for writing
 *    (the CVE-2019-5736 class, including "#!/proc/self/exe" programs).
 *
 * Usage: runtime-init [-f FIFO_FD | -w FD] [-l ATTR_PATH LABEL] [-s BPF_FD FLAGS]
 *                     [PATH ARGV0 [ARG...]]
 *
 *  -f  block opening /proc/self/fd/FIFO_FD (an O_PATH fd of the exec fifo) for
 *      writing until `runtime start` opens it for reading; the fifo stays open,
 *      close-on-exec, so `start` reads EOF when execve succeeds, or an error
 *      record "E<errno>" when it fails.  Without PATH (a container created with
 *      no process) it only waits.
 *  -w  report to FD, already open (the fifo when the init waited for `start`
 *      itself), made close-on-exec here.
 *  -l  write LABEL to ATTR_PATH (an LSM exec attribute) just before execve.
 *  -s  load the seccomp filter whose BPF instructions BPF_FD holds (read, then
 *      closed, at start) with seccomp(2) FLAGS, as the very last step: between the
 *      filter and the user's program there is only the execve, so a profile that
 *      denies what the runtime itself calls cannot break the container (needs
 *      no_new_privs, which the runtime has set).
 *
 * The environment is passed through to PATH unchanged.  Freestanding: no libc, so
 * the binary is a few KiB and runs in any root filesystem.
 */

#include <asm/unistd.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

typedef unsigned long ulong;

#if defined(__x86_64__)
static long sys3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}
__asm__(".text\n.global _start\n_start:\n"
        "  xor %rbp, %rbp\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call rt_main\n  hlt\n");
#elif defined(__aarch64__)
static long sys3(long n, long a, long b, long c)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
__asm__(".text\n.global _start\n_start:\n  mov x0, sp\n  bl rt_main\n  brk #0\n");
#else
#error "runtime-init supports x86_64 and aarch64"
#endif

#ifndef __NR_open
#define rt_open(path, flags) sys3(__NR_openat, AT_FDCWD, (long)(path), (flags))
#else
#define rt_open(path, flags) sys3(__NR_open, (long)(path), (flags), 0)
#endif

static ulong rt_strlen(const char *s)
{
    ulong n = 0;
    while (s[n])
        n++;
    return n;
}

static int rt_atoi(const char *s)
{
    int n = 0;
    while (*s >= '0' && *s <= '9')
        n = n * 10 + (*s++ - '0');
    return n;
}

/* BPF_MAXINSNS instructions at most */
static struct sock_filter program[4096];

/* Read the program from fd, from its current offset (the runtime leaves it at 0);
 * the number of instructions, or a negative errno. */
static long read_program(int fd)
{
    long off = 0, n;
    while (off < (long)sizeof(program)) {
        n = sys3(__NR_read, fd, (long)((char *)program + off), sizeof(program) - off);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        off += n;
    }
    sys3(__NR_close, fd, 0, 0);
    if (off == 0 || off % sizeof(struct sock_filter))
        return -22; /* EINVAL */
    return off / sizeof(struct sock_filter);
}

static void rt_exit(int code)
{
    for (;;)
        sys3(__NR_exit_group, code, 0, 0);
}

/* Report errno as "<tag><n>" on fd ("E": the exec or a step before it, "S": the
 * seccomp filter); the runtime turns it into a message. */
static void report(int fd, char tag, long err)
{
    char buf[16];
    int i = sizeof(buf);
    ulong n = (ulong)-err;
    do {
        buf[--i] = '0' + n % 10;
        n /= 10;
    } while (n && i > 1);
    buf[--i] = tag;
    sys3(__NR_write, fd, (long)(buf + i), sizeof(buf) - i);
}

void rt_main(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    int fifo = -1, out = 2, i = 1;
    const char *attr = 0, *label = 0;
    long insns = 0, filter_flags = 0;

    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (argv[i][1] == 'f' && i + 1 < argc) {
            fifo = rt_atoi(argv[++i]);
        } else if (argv[i][1] == 'w' && i + 1 < argc) {
            out = rt_atoi(argv[++i]);
            sys3(__NR_fcntl, out, F_SETFD, FD_CLOEXEC);
        } else if (argv[i][1] == 'l' && i + 2 < argc) {
            attr = argv[++i];
            label = argv[++i];
        } else if (argv[i][1] == 's' && i + 2 < argc) {
            insns = read_program(rt_atoi(argv[++i]));
            filter_flags = rt_atoi(argv[++i]);
        } else {
            break;
        }
    }
    if (argc - i < 2 && fifo < 0)
        rt_exit(127);

    if (fifo >= 0) {
        char path[32] = "/proc/self/fd/";
        char digits[12];
        int d = 0, p = 14, n = fifo;
        do {
            digits[d++] = '0' + n % 10;
            n /= 10;
        } while (n);
        while (d)
            path[p++] = digits[--d];
        path[p] = 0;
        long fd = rt_open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            rt_exit(126);
        sys3(__NR_close, fifo, 0, 0);
        out = (int)fd;
        if (argc - i < 2)
            rt_exit(0);
    }
    if (attr) {
        long fd = rt_open(attr, O_WRONLY | O_CLOEXEC);
        long err = fd;
        if (fd >= 0) {
            err = sys3(__NR_write, fd, (long)label, rt_strlen(label));
            sys3(__NR_close, fd, 0, 0);
        }
        if (err < 0) {
            report(out, 'E', err);
            rt_exit(127);
        }
    }
    if (insns < 0) {
        report(out, 'S', insns);
        rt_exit(127);
    }
    if (insns > 0) {
        struct sock_fprog prog = {(unsigned short)insns, program};
        long err = sys3(__NR_seccomp, SECCOMP_SET_MODE_FILTER, filter_flags, (long)&prog);
        if (err < 0) {
            report(out, 'S', err);
            rt_exit(127);
        }
    }
    long err = sys3(__NR_execve, (long)argv[i], (long)(argv + i + 1), (long)envp);
    report(out, 'E', err);
    rt_exit(127);
}
