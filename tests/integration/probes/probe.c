/*
 * probe: small checks run inside a container by tests/integration/test_security.py
 * and test_escapes.py.  Built at test time with `gcc -static -O2`.
 *
 *   probe noop                     exit 0 without a system call of its own
 *   probe ids                      uid=U euid=E gid=G egid=H
 *   probe sched                    policy=P nice=N ioprio=C/L
 *   probe mempolicy                mode=M nodes=0xMASK
 *   probe init_module              errno of init_module() of a junk image ("ok" if 0)
 *   probe finit_module PATH        errno of finit_module() of PATH
 *   probe ptrace PID               errno of PTRACE_ATTACH
 *   probe open PATH r|w|rw         errno of open()
 *   probe mknod PATH b|c MAJ MIN   errno of mknod()
 *   probe fds [CMD ARG...]         list this process's fds ("fd N dir|other TARGET"),
 *                                  then exec CMD, if given
 *   probe rewrite PATH             read the first byte of PATH and write it back
 *   probe hijack STOP READY        the CVE-2019-5736 attack: until the file STOP exists,
 *                                  hold an O_PATH fd of every /proc/PID/exe that is
 *                                  not a file of this container; then (when no
 *                                  process executes them any more) reopen each for
 *                                  writing and write its first byte back:
 *       HELD PID LINK DEV:INO               an exe held
 *       HIJACK LINK DEV:INO ERRNO|ok        the reopen for writing ("ok": the attack won)
 *   probe scan STOP READY [HOST]   until the file STOP exists, look at every other
 *                                  process: what its /proc/PID/exe, cwd, root and fds
 *                                  let us open; a directory reached that way is
 *                                  used to read the host file HOST.  Report lines:
 *       FOREIGN-EXE PID LINK write=ERR     an exe outside our tree could be opened
 *       MEMFD-EXE-WRITABLE PID LINK        a memfd exe could be written
 *       FOREIGN-DIR PID WHAT LINK top=D:I  a directory whose ".." chain ends at D:I,
 *                                          not at our root (WHAT: cwd, root, fd/N)
 *       FOREIGN-FILE PID fd/N LINK         a regular file outside our tree (fd > 2)
 *       FOREIGN-NS PID fd/N LINK           a namespace that is not ours
 *       READ-HOST HOST CONTENTS            HOST was read through a FOREIGN-DIR
 *       seen LINK opened=N denied=N errno=E   every exe looked at
 *
 * Results are errno names (strerrorname_np) so that tests compare exact values.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *result(long rc)
{
    return rc < 0 ? strerrorname_np(errno) : "ok";
}

static int cmd_sched(void)
{
    int policy = sched_getscheduler(0);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    long io = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
    printf("policy=%d nice=%d ioprio=%ld/%ld\n", policy & ~SCHED_RESET_ON_FORK, nice,
           io >> 13, io & 0x1fff);
    return 0;
}

static int cmd_mempolicy(void)
{
    int mode = -1;
    unsigned long mask[16] = {0};
    long rc = syscall(SYS_get_mempolicy, &mode, mask, sizeof(mask) * 8, 0, 0);
    if (rc < 0) {
        printf("get_mempolicy: %s\n", strerrorname_np(errno));
        return 1;
    }
    printf("mode=%d nodes=0x%lx\n", mode, mask[0]);
    return 0;
}

/* -- scan ------------------------------------------------------------------------ */
struct seen {
    char link[256];
    int opened, denied, last_errno;
};
static struct seen seen[128];
static int nseen;
static struct stat root_st;
static const char *host_file;

static struct seen *note(const char *link)
{
    for (int i = 0; i < nseen; i++)
        if (!strcmp(seen[i].link, link))
            return &seen[i];
    if (nseen == (int)(sizeof(seen) / sizeof(seen[0])))
        return &seen[nseen - 1];
    snprintf(seen[nseen].link, sizeof(seen[nseen].link), "%s", link);
    return &seen[nseen++];
}

/* Is the file open on fd one this container can reach by its path? */
static int reachable(int fd, const char *link)
{
    struct stat a, b;
    if (fstat(fd, &a) < 0 || link[0] != '/' || stat(link, &b) < 0)
        return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static struct stat top_st;   /* where the last below_our_root() walk stopped */

/* Walk ".." from the directory fd up to where it stops: is that our root? */
static int below_our_root(int fd)
{
    struct stat prev, cur;
    int dir = dup(fd);
    if (fstat(dir, &prev) < 0) {
        close(dir);
        return 1;
    }
    for (int i = 0; i < 4096; i++) {
        int up = openat(dir, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        close(dir);
        if (up < 0)
            return 1;
        dir = up;
        fstat(dir, &cur);
        if (cur.st_dev == prev.st_dev && cur.st_ino == prev.st_ino)
            break;
        prev = cur;
    }
    top_st = prev;
    int ours = prev.st_dev == root_st.st_dev && prev.st_ino == root_st.st_ino;
    if (!ours && host_file) {
        /* dir is now the top of the tree the fd came from: read HOST through it */
        int f = openat(dir, host_file + 1, O_RDONLY | O_CLOEXEC);
        if (f >= 0) {
            char buf[128];
            ssize_t n = read(f, buf, sizeof(buf) - 1);
            buf[n > 0 ? n : 0] = 0;
            buf[strcspn(buf, "\n")] = 0;
            printf("READ-HOST %s %s\n", host_file, buf);
            close(f);
        }
    }
    close(dir);
    return ours;
}

static int is_memfd(const char *link)
{
    return !strncmp(link, "/memfd:", 7);
}

/* Read the first byte and write it back: a sealed memfd refuses. */
static const char *rewrite_first_byte(const char *path)
{
    static char buf[64];
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return strerrorname_np(errno);
    char c;
    const char *r = "ok";
    if (pread(fd, &c, 1, 0) != 1)
        r = "read-failed";
    else if (pwrite(fd, &c, 1, 0) < 0) {
        snprintf(buf, sizeof(buf), "%s", strerrorname_np(errno));
        r = buf;
    }
    close(fd);
    return r;
}

static void look_exe(int pid)
{
    char path[64], link[256];
    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n < 0)
        return;
    link[n] = 0;
    struct seen *s = note(link);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s->denied++;
        s->last_errno = errno;
        return;
    }
    s->opened++;
    if (is_memfd(link)) {
        const char *r = rewrite_first_byte(path);
        if (!strcmp(r, "ok"))
            printf("MEMFD-EXE-WRITABLE %d %s\n", pid, link);
    } else if (!reachable(fd, link)) {
        int w = open(path, O_WRONLY | O_CLOEXEC); /* never written to */
        printf("FOREIGN-EXE %d %s write=%s\n", pid, link, w < 0 ? strerrorname_np(errno) : "ok");
        if (w >= 0)
            close(w);
    }
    close(fd);
}

static void look_link(int pid, const char *name, int is_fd)
{
    char path[384], link[256], mine[256];
    snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    if (n < 0)
        return;
    link[n] = 0;
    if (strchr(link, ':') && link[0] != '/') {
        /* anon_inode:, socket:, pipe:, or a namespace "mnt:[4026531841]" */
        char type[32];
        if (sscanf(link, "%31[a-z_]:[", type) == 1) {
            char own[64];
            snprintf(own, sizeof(own), "/proc/self/ns/%s", type);
            ssize_t m = readlink(own, mine, sizeof(mine) - 1);
            if (m > 0) {
                mine[m] = 0;
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                    if (strcmp(mine, link))
                        printf("FOREIGN-NS %d %s %s\n", pid, name, link);
                    close(fd);
                }
            }
        }
        return;
    }
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    fstat(fd, &st);
    if (S_ISDIR(st.st_mode)) {
        if (!below_our_root(fd))
            printf("FOREIGN-DIR %d %s %s top=%lu:%lu\n", pid, name, link,
                   (unsigned long)top_st.st_dev, (unsigned long)top_st.st_ino);
    } else if (S_ISREG(st.st_mode) && !is_memfd(link) && !reachable(fd, link)) {
        /* stdio of the caller of `runtime exec` is the caller's business */
        if (!is_fd || atoi(name + 3) > 2)
            printf("FOREIGN-FILE %d %s %s\n", pid, name, link);
    }
    close(fd);
}

static int cmd_scan(const char *stop, const char *ready, const char *host)
{
    host_file = host;
    stat("/", &root_st);
    int self = getpid(), parent = getppid();
    int f = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (f >= 0)
        close(f);
    long rounds = 0, looks = 0;
    while (access(stop, F_OK) < 0) {
        rounds++;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == self || pid == parent)
                continue;
            looks++;
            look_exe(pid);
            look_link(pid, "cwd", 0);
            look_link(pid, "root", 0);
            char fddir[64];
            snprintf(fddir, sizeof(fddir), "/proc/%d/fd", pid);
            DIR *fds = opendir(fddir);
            struct dirent *g;
            while (fds && (g = readdir(fds))) {
                if (g->d_name[0] == '.')
                    continue;
                char name[300];
                snprintf(name, sizeof(name), "fd/%s", g->d_name);
                look_link(pid, name, 1);
            }
            if (fds)
                closedir(fds);
        }
        if (d)
            closedir(d);
    }
    printf("rounds %ld looks %ld\n", rounds, looks);
    for (int i = 0; i < nseen; i++)
        printf("seen %s opened=%d denied=%d errno=%s\n", seen[i].link, seen[i].opened,
               seen[i].denied, seen[i].denied ? strerrorname_np(seen[i].last_errno) : "-");
    return 0;
}

static int cmd_hijack(const char *stop, const char *ready)
{
    int held[64], nheld = 0, self = getpid();
    char links[64][300];
    int f = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (f >= 0)
        close(f);
    while (access(stop, F_OK) < 0) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d)) && nheld < 64) {
            int pid = atoi(e->d_name);
            char path[64], link[256];
            if (pid <= 0 || pid == self)
                continue;
            snprintf(path, sizeof(path), "/proc/%d/exe", pid);
            ssize_t n = readlink(path, link, sizeof(link) - 1);
            if (n < 0)
                continue;
            link[n] = 0;
            if (is_memfd(link))
                continue;
            int fd = open(path, O_PATH | O_CLOEXEC);
            if (fd < 0)
                continue;
            char again[256];
            n = readlink(path, again, sizeof(again) - 1);
            if (n < 0 || (again[n] = 0, strcmp(again, link))) {
                close(fd); /* it exec'd meanwhile: which file fd holds is unknown */
                continue;
            }
            int dup_of = 0;
            struct stat a, b;
            fstat(fd, &a);
            for (int i = 0; i < nheld && !dup_of; i++)
                dup_of = fstat(held[i], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
            if (dup_of || reachable(fd, link)) {
                close(fd);
                continue;
            }
            printf("HELD %d %s %lu:%lu\n", pid, link, (unsigned long)a.st_dev,
                   (unsigned long)a.st_ino);
            snprintf(links[nheld], sizeof(links[nheld]), "%s %lu:%lu", link,
                     (unsigned long)a.st_dev, (unsigned long)a.st_ino);
            held[nheld++] = fd;
        }
        if (d)
            closedir(d);
    }
    for (int i = 0; i < nheld; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", held[i]);
        printf("HIJACK %s %s\n", links[i], rewrite_first_byte(path));
    }
    return 0;
}

static int cmd_fds(char **cmd)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        char path[300], link[256] = "";
        struct stat st;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        link[n > 0 ? n : 0] = 0;
        int dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
        printf("fd %s %s %s\n", e->d_name, dir ? "dir" : "other", link);
    }
    if (d)
        closedir(d);
    fflush(stdout);
    if (cmd[0]) {
        execvp(cmd[0], cmd);
        perror("exec");
        return 127;
    }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return 2;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "noop"))
        return 0;
    if (!strcmp(cmd, "ids")) {
        printf("uid=%d euid=%d gid=%d egid=%d\n", getuid(), geteuid(), getgid(), getegid());
    } else if (!strcmp(cmd, "hijack") && argc > 3) {
        return cmd_hijack(argv[2], argv[3]);
    } else if (!strcmp(cmd, "sched")) {
        return cmd_sched();
    } else if (!strcmp(cmd, "mempolicy")) {
        return cmd_mempolicy();
    } else if (!strcmp(cmd, "init_module")) {
        static char image[64];
        printf("init_module: %s\n", result(syscall(SYS_init_module, image, sizeof(image), "")));
    } else if (!strcmp(cmd, "finit_module") && argc > 2) {
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        printf("finit_module: %s\n", result(syscall(SYS_finit_module, fd, "", 0)));
    } else if (!strcmp(cmd, "ptrace") && argc > 2) {
        long rc = ptrace(PTRACE_ATTACH, atoi(argv[2]), 0, 0);
        printf("ptrace: %s\n", result(rc));
        if (rc == 0)
            ptrace(PTRACE_DETACH, atoi(argv[2]), 0, 0);
    } else if (!strcmp(cmd, "open") && argc > 3) {
        int flags = !strcmp(argv[3], "w") ? O_WRONLY : !strcmp(argv[3], "rw") ? O_RDWR : O_RDONLY;
        int fd = open(argv[2], flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        printf("open: %s\n", result(fd));
    } else if (!strcmp(cmd, "mknod") && argc > 5) {
        mode_t type = argv[3][0] == 'b' ? S_IFBLK : S_IFCHR;
        long rc = mknod(argv[2], type | 0600, makedev(atoi(argv[4]), atoi(argv[5])));
        printf("mknod: %s\n", result(rc));
    } else if (!strcmp(cmd, "fds")) {
        return cmd_fds(argv + 2);
    } else if (!strcmp(cmd, "rewrite") && argc > 2) {
        printf("rewrite: %s\n", rewrite_first_byte(argv[2]));
    } else if (!strcmp(cmd, "scan") && argc > 3) {
        return cmd_scan(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
    } else {
        fprintf(stderr, "probe: bad command\n");
        return 2;
    }
    return 0;
}
