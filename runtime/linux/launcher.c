/*
 * runtime launcher: the `runtime` program that scripts/setup installs.
 *
 * It runs PYTHON -IS SCRIPT ARGS... (both paths fixed at build time with -D), with
 * the interpreter executed through a detached read-only bind mount of its binary
 * (open_tree + mount_setattr, Linux 5.12+).  /proc/<pid>/exe of the runtime and of
 * every process it forks into a container then leads to a file no one can open for
 * writing (the CVE-2019-5736 class), at the cost of two system calls instead of a
 * second interpreter start (runtime.linux.reexec_sealed, which the Python entry
 * point falls back to when it finds its binary writable).
 *
 * Only the commands whose processes enter a container (create, run, exec) pay for
 * the view: the others exec the interpreter by path (a detached mount costs its
 * teardown when the process exits).  Where the mount cannot be made (an old
 * kernel, no CAP_SYS_ADMIN) it execs the interpreter by path and leaves the
 * sealing to the Python side, which also catches a command line read otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PYTHON
#error "build with -DPYTHON=\"/path/to/python\""
#endif
#ifndef SCRIPT
#error "build with -DSCRIPT=\"/path/to/script\""
#endif

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x1
#define MOUNT_ATTR_NOSUID 0x2
#define MOUNT_ATTR_NODEV 0x4
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

struct rt_mount_attr {
    unsigned long long attr_set, attr_clr, propagation, userns_fd;
};

/* An fd of a read-only view of the interpreter's binary, or -1. */
static int readonly_view(void)
{
    char *real = realpath(PYTHON, NULL);
    if (!real)
        return -1;
    int fd = syscall(SYS_open_tree, AT_FDCWD, real, OPEN_TREE_CLONE | O_CLOEXEC);
    free(real);
    if (fd < 0)
        return -1;
    struct rt_mount_attr attr = {MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The command word, after runc's global flags (those that take a value may have
 * it as the next argument). */
static const char *command(int argc, char **argv)
{
    static const char *valued[] = {"root", "log", "log-format", "rootless", "criu", 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-')
            return a;
        while (*a == '-')
            a++;
        if (strchr(a, '='))
            continue;
        for (int v = 0; valued[v]; v++)
            if (!strcmp(a, valued[v])) {
                i++;
                break;
            }
    }
    return "";
}

static int enters_a_container(const char *cmd)
{
    return !strcmp(cmd, "create") || !strcmp(cmd, "run") || !strcmp(cmd, "exec");
}

int main(int argc, char **argv)
{
    char **args = calloc(argc + 4, sizeof(char *));
    if (!args) {
        perror("runtime");
        return 1;
    }
    args[0] = PYTHON;
    args[1] = "-IS";
    args[2] = SCRIPT;
    memcpy(args + 3, argv + 1, argc * sizeof(char *)); /* with the final NULL */
    extern char **environ;
    int fd = enters_a_container(command(argc, argv)) ? readonly_view() : -1;
    if (fd >= 0)
        syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
    execv(PYTHON, args);
    fprintf(stderr, "runtime: exec %s: %s\n", PYTHON, strerror(errno));
    return 127;
}
