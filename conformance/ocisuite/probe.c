/*
 * probe: a tiny static helper that the conformance suite runs inside containers
 * to observe what busybox cannot.  Every command prints "key=value" lines.
 *
 *   probe argv ARGS...        each argv[i] as  argv[i]=<hex of the bytes>
 *   probe fds                 open descriptors: fd=N target
 *   probe umask VALUE         raw umask(VALUE): ret=R errno=E
 *   probe sys NAME            one benign raw syscall: ret=R errno=E
 *   probe i386 NR ARG         the i386 (int 0x80) syscall NR with one argument
 *   probe sched               sched_getattr(0): policy, nice, priority, flags, ...
 *   probe ioprio              ioprio_get(IOPRIO_WHO_PROCESS, 0): class, level
 *   probe mempolicy           get_mempolicy: mode, flags, nodes
 *   probe personality         personality(0xffffffff)
 *   probe winsize             TIOCGWINSZ on fd 0, isatty of 0,1,2
 *   probe open PATH r|w|rw    open(PATH) with O_NONBLOCK: errno=E
 *   probe rlimits             getrlimit of every resource 0..15
 *   probe sleep SECONDS       nanosleep, then exit 0
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

struct probe_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
};

static void result(long ret)
{
    printf("ret=%ld errno=%d\n", ret, ret < 0 ? errno : 0);
}

static int cmd_argv(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        printf("argv[%d]=", i - 2);
        for (const unsigned char *p = (const unsigned char *)argv[i]; *p; p++)
            printf("%02x", *p);
        printf("\n");
    }
    printf("argc=%d\n", argc - 2);
    return 0;
}

static int cmd_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        perror("opendir");
        return 1;
    }
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd == self)
            continue;
        char path[64], target[512];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = 0;
        printf("fd=%d %s\n", fd, target);
    }
    closedir(d);
    return 0;
}

static int cmd_sys(const char *name)
{
    char buf[256];
    long r;
    if (!strcmp(name, "getcwd"))
        r = syscall(SYS_getcwd, buf, sizeof buf);
    else if (!strcmp(name, "mkdir"))
        r = syscall(SYS_mkdir, "/tmp/probe-mkdir", 0755);
    else if (!strcmp(name, "chmod"))
        r = syscall(SYS_chmod, "/tmp", 01777);
    else if (!strcmp(name, "getppid"))
        r = syscall(SYS_getppid);
    else if (!strcmp(name, "getpid"))
        r = syscall(SYS_getpid);
    else if (!strcmp(name, "sync"))
        r = syscall(SYS_sync);
    else if (!strcmp(name, "uname"))
        r = syscall(SYS_uname, buf);
    else {
        fprintf(stderr, "unknown syscall %s\n", name);
        return 2;
    }
    result(r);
    return 0;
}

static int cmd_i386(long nr, long arg)
{
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(arg) : "memory");
    printf("ret=%ld\n", ret);
    return 0;
#else
    (void)nr;
    (void)arg;
    printf("unsupported=1\n");
    return 0;
#endif
}

static int cmd_sched(void)
{
    struct probe_sched_attr a;
    memset(&a, 0, sizeof a);
    long r = syscall(SYS_sched_getattr, 0, &a, sizeof a, 0);
    if (r < 0) {
        result(r);
        return 1;
    }
    printf("policy=%u\nnice=%d\npriority=%u\nflags=%llu\nruntime=%llu\ndeadline=%llu\nperiod=%llu\n",
           a.sched_policy, a.sched_nice, a.sched_priority, (unsigned long long)a.sched_flags,
           (unsigned long long)a.sched_runtime, (unsigned long long)a.sched_deadline,
           (unsigned long long)a.sched_period);
    return 0;
}

static int cmd_ioprio(void)
{
    long r = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
    if (r < 0) {
        result(r);
        return 1;
    }
    printf("class=%ld\nlevel=%ld\n", (r >> 13) & 7, r & 0xff);
    return 0;
}

static int cmd_mempolicy(void)
{
    int mode = -1;
    unsigned long mask[16];
    memset(mask, 0, sizeof mask);
    long r = syscall(SYS_get_mempolicy, &mode, mask, sizeof mask * 8, NULL, 0);
    if (r < 0) {
        result(r);
        return 1;
    }
    /* the high bits of mode carry MPOL_F_STATIC_NODES (1<<15), RELATIVE (1<<14),
       NUMA_BALANCING (1<<13) */
    printf("mode=%d\nflags=%d\nnodes=", mode & 0xff, mode & ~0xff);
    int first = 1;
    for (int i = 0; i < (int)(sizeof mask * 8); i++)
        if (mask[i / (8 * sizeof(long))] & (1UL << (i % (8 * sizeof(long))))) {
            printf(first ? "%d" : ",%d", i);
            first = 0;
        }
    printf("\n");
    return 0;
}

static int cmd_winsize(void)
{
    struct winsize ws;
    for (int fd = 0; fd < 3; fd++)
        printf("isatty%d=%d\n", fd, isatty(fd));
    if (ioctl(0, TIOCGWINSZ, &ws) < 0) {
        printf("errno=%d\n", errno);
        return 1;
    }
    printf("rows=%u\ncols=%u\n", ws.ws_row, ws.ws_col);
    return 0;
}

static int cmd_open(const char *path, const char *mode)
{
    int flags = O_NONBLOCK | O_NOCTTY;
    if (!strcmp(mode, "r"))
        flags |= O_RDONLY;
    else if (!strcmp(mode, "w"))
        flags |= O_WRONLY;
    else
        flags |= O_RDWR;
    int fd = open(path, flags);
    printf("errno=%d\n", fd < 0 ? errno : 0);
    if (fd >= 0)
        close(fd);
    return 0;
}

static int cmd_rlimits(void)
{
    for (int r = 0; r < 16; r++) {
        struct rlimit rl;
        if (getrlimit(r, &rl) < 0) {
            printf("rlimit%d=error %d\n", r, errno);
            continue;
        }
        printf("rlimit%d=%llu %llu\n", r, (unsigned long long)rl.rlim_cur,
               (unsigned long long)rl.rlim_max);
    }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: probe COMMAND [ARGS]\n");
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "argv"))
        return cmd_argv(argc, argv);
    if (!strcmp(c, "fds"))
        return cmd_fds();
    if (!strcmp(c, "umask") && argc > 2) {
        long r = syscall(SYS_umask, strtol(argv[2], NULL, 0));
        result(r);
        return 0;
    }
    if (!strcmp(c, "sys") && argc > 2)
        return cmd_sys(argv[2]);
    if (!strcmp(c, "i386") && argc > 3)
        return cmd_i386(strtol(argv[2], NULL, 0), strtol(argv[3], NULL, 0));
    if (!strcmp(c, "sched"))
        return cmd_sched();
    if (!strcmp(c, "ioprio"))
        return cmd_ioprio();
    if (!strcmp(c, "mempolicy"))
        return cmd_mempolicy();
    if (!strcmp(c, "personality")) {
        printf("personality=%d\n", personality(0xffffffff));
        return 0;
    }
    if (!strcmp(c, "winsize"))
        return cmd_winsize();
    if (!strcmp(c, "open") && argc > 3)
        return cmd_open(argv[2], argv[3]);
    if (!strcmp(c, "rlimits"))
        return cmd_rlimits();
    if (!strcmp(c, "sleep") && argc > 2) {
        struct timespec ts = {atoi(argv[2]), 0};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        return 0;
    }
    fprintf(stderr, "probe: unknown command %s\n", c);
    return 2;
}
