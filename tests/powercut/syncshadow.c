/*
 * syncshadow: a power cut for one process, as an LD_PRELOAD shim.
 *
 * Every fsync/fdatasync of a file under $SYNCSHADOW_DIR copies the file's content, as it is
 * when the sync returns, to the same place under $SYNCSHADOW_SHADOW: the shadow holds exactly
 * what a power cut would leave on disk if every write not yet synced were lost. At the
 * $SYNCSHADOW_CUT_AT-th such sync (counted from 1, all threads together) the process kills
 * itself with SIGKILL *before* that sync: the writes it was to make durable are lost. The
 * harness then replaces $SYNCSHADOW_DIR with the shadow and starts the program again.
 *
 * The model of the disk, stricter than ext4 for data and as lenient for metadata:
 *  - a file's content after the cut is its content at its last fsync/fdatasync: every write
 *    after that is lost, a truncation too;
 *  - a file never synced does not exist after the cut (SQLite's -shm never is);
 *  - rename and unlink are durable when they return (applied to the shadow at once; a file
 *    renamed before it was ever synced leaves no file under either name);
 *  - a sync of a directory is counted as a cut point and changes nothing else.
 * Files are named by path and read through /proc/self/fd/N of the synced descriptor.
 *
 * $SYNCSHADOW_LOG, when set, gets one line per counted sync: "<n> <path>".
 *
 * Built by the test: cc -shared -fPIC -O2 -o syncshadow.so syncshadow.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* Prefix of the shim's temporary files in the shadow; the harness never copies them back. */
#define TMP_PREFIX ".syncshadow-"

static char watched[PATH_MAX];
static char shadow[PATH_MAX];
static long cut_at;
static int log_fd = -1;
static unsigned long syncs;

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_remove)(const char *);

__attribute__((constructor)) static void init(void)
{
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_renameat = dlsym(RTLD_NEXT, "renameat");
    real_renameat2 = dlsym(RTLD_NEXT, "renameat2");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_unlinkat = dlsym(RTLD_NEXT, "unlinkat");
    real_remove = dlsym(RTLD_NEXT, "remove");
    const char *d = getenv("SYNCSHADOW_DIR");
    const char *s = getenv("SYNCSHADOW_SHADOW");
    if (!d || !s || !realpath(d, watched) || !realpath(s, shadow)) {
        /* Nothing to watch: a harness that forgot a variable must not believe it cut. */
        fprintf(stderr, "syncshadow: SYNCSHADOW_DIR and SYNCSHADOW_SHADOW must name existing "
                        "directories\n");
        _exit(97);
    }
    const char *c = getenv("SYNCSHADOW_CUT_AT");
    cut_at = c ? atol(c) : 0;
    const char *l = getenv("SYNCSHADOW_LOG");
    if (l)
        log_fd = open(l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* A shadow the harness cannot trust must not pass for the synced state: the process dies with
 * SIGABRT, which the harness reports as a failure of the harness, never as a cut. */
static void broken(const char *what, const char *path)
{
    fprintf(stderr, "syncshadow: %s %s: %s\n", what, path, strerror(errno));
    kill(getpid(), SIGABRT);
}

/* buf = a "/" b; 0 on success, -1 when it does not fit. */
static int join(char *buf, size_t len, const char *a, const char *b)
{
    int n = snprintf(buf, len, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* The part of an absolute path below the watched directory ("" for the directory itself), or
 * NULL when the path is elsewhere. */
static const char *under_watched(const char *path)
{
    size_t n = strlen(watched);
    if (strncmp(path, watched, n) != 0)
        return NULL;
    if (path[n] == '\0')
        return "";
    if (path[n] != '/')
        return NULL;
    return path + n + 1;
}

/* The absolute path an open descriptor names, in buf; 0 on success. */
static int fd_path(int fd, char *buf, size_t len)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, len - 1);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* The absolute path of `path` relative to `dirfd` (AT_FDCWD: the working directory), without
 * following its last component (it may be gone, as after an unlink). */
static int at_path(int dirfd, const char *path, char *buf, size_t len)
{
    char base[PATH_MAX];
    if (path[0] == '/') {
        base[0] = '\0';
    } else if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base))
            return -1;
    } else if (fd_path(dirfd, base, sizeof base) != 0) {
        return -1;
    }
    char joined[PATH_MAX * 2];
    int j = snprintf(joined, sizeof joined, "%s%s%s", base, base[0] ? "/" : "", path);
    if (j < 0 || (size_t)j >= sizeof joined)
        return -1;
    /* Resolve the parent (it exists), keep the last component as given. */
    char *slash = strrchr(joined, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    char parent[PATH_MAX];
    if (!realpath(joined[0] ? joined : "/", parent))
        return -1;
    int n = snprintf(buf, len, "%s/%s", strcmp(parent, "/") ? parent : "", slash + 1);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* mkdir -p of the directories above `path`. */
static void make_parents(const char *path)
{
    char p[PATH_MAX];
    if (strlen(path) >= sizeof p)
        return;
    strcpy(p, path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0700);
            *s = '/';
        }
    }
}

/* Copies the content of `fd` to shadow/rel, atomically (temporary file, rename). */
static void snapshot(int fd, const char *rel)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || rel[0] == '\0')
        return;
    char dst[PATH_MAX], tmp[PATH_MAX], name[64];
    snprintf(name, sizeof name, TMP_PREFIX "%ld.tmp", (long)syscall(SYS_gettid));
    if (join(dst, sizeof dst, shadow, rel) != 0 || join(tmp, sizeof tmp, shadow, name) != 0)
        goto fail;
    make_parents(dst);
    /* The synced descriptor may be write-only: read the same file through /proc. */
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int in = open(link, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        goto fail;
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        goto fail;
    }
    char buf[1 << 16];
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(in, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail_close;
        if (n == 0)
            break;
        for (ssize_t w = 0; w < n;) {
            ssize_t m = write(out, buf + w, (size_t)(n - w));
            if (m < 0 && errno == EINTR)
                continue;
            if (m < 0)
                goto fail_close;
            w += m;
        }
        off += n;
    }
    close(in);
    close(out);
    if (real_rename(tmp, dst) != 0)
        goto fail;
    return;
fail_close:
    close(in);
    close(out);
fail:
    broken("cannot copy to the shadow:", rel);
}

/* A sync of fd: counted (and cut) when it names a file under the watched directory. */
static int synced(int fd, int (*real)(int))
{
    char path[PATH_MAX];
    const char *rel = fd_path(fd, path, sizeof path) == 0 ? under_watched(path) : NULL;
    if (!rel)
        return real(fd);
    unsigned long n = __atomic_add_fetch(&syncs, 1, __ATOMIC_SEQ_CST);
    if (log_fd >= 0) {
        char line[PATH_MAX + 32];
        int len = snprintf(line, sizeof line, "%lu %s\n", n, path);
        if (len > 0)
            (void)!write(log_fd, line, (size_t)len);
    }
    if (cut_at > 0 && n == (unsigned long)cut_at) {
        kill(getpid(), SIGKILL);
        for (;;)
            pause();
    }
    int rv = real(fd);
    if (rv == 0)
        snapshot(fd, rel);
    return rv;
}

int fsync(int fd)
{
    return synced(fd, real_fsync);
}

int fdatasync(int fd)
{
    return synced(fd, real_fdatasync);
}

/* The shadow path of an absolute path under the watched directory, or 0. */
static int shadow_of(const char *abs, char *buf, size_t len)
{
    const char *rel = under_watched(abs);
    if (!rel || rel[0] == '\0')
        return 0;
    if (join(buf, len, shadow, rel) != 0) {
        broken("path too long in the shadow:", rel);
        return 0;
    }
    return 1;
}

/* A rename that happened: the shadow follows (durable metadata). */
static void renamed(const char *from_abs, const char *to_abs)
{
    char from[PATH_MAX], to[PATH_MAX];
    int f = shadow_of(from_abs, from, sizeof from);
    int t = shadow_of(to_abs, to, sizeof to);
    if (t) {
        struct stat st;
        if (f && lstat(from, &st) == 0) {
            make_parents(to);
            real_rename(from, to);
        } else {
            /* The file now under `to` was never synced: after a cut it is not there. */
            real_unlink(to);
        }
    } else if (f) {
        real_unlink(from);
    }
}

/* Both absolute paths of a rename, taken before it happens; 1 when both are known. */
static int rename_paths(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                        char *from, char *to)
{
    return at_path(olddirfd, oldpath, from, PATH_MAX) == 0
        && at_path(newdirfd, newpath, to, PATH_MAX) == 0;
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags)
{
    char from[PATH_MAX], to[PATH_MAX];
    int known = rename_paths(olddirfd, oldpath, newdirfd, newpath, from, to);
    int rv = real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
    if (rv == 0 && known)
        renamed(from, to);
    return rv;
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    char from[PATH_MAX], to[PATH_MAX];
    int known = rename_paths(olddirfd, oldpath, newdirfd, newpath, from, to);
    int rv = real_renameat(olddirfd, oldpath, newdirfd, newpath);
    if (rv == 0 && known)
        renamed(from, to);
    return rv;
}

int rename(const char *oldpath, const char *newpath)
{
    char from[PATH_MAX], to[PATH_MAX];
    int known = rename_paths(AT_FDCWD, oldpath, AT_FDCWD, newpath, from, to);
    int rv = real_rename(oldpath, newpath);
    if (rv == 0 && known)
        renamed(from, to);
    return rv;
}

static void unlinked(const char *abs, int dir)
{
    char s[PATH_MAX];
    if (shadow_of(abs, s, sizeof s)) {
        if (dir)
            rmdir(s);
        else
            real_unlink(s);
    }
}

int unlinkat(int dirfd, const char *path, int flags)
{
    char abs[PATH_MAX];
    int known = at_path(dirfd, path, abs, sizeof abs) == 0;
    int rv = real_unlinkat(dirfd, path, flags);
    if (rv == 0 && known)
        unlinked(abs, flags & AT_REMOVEDIR);
    return rv;
}

int unlink(const char *path)
{
    char abs[PATH_MAX];
    int known = at_path(AT_FDCWD, path, abs, sizeof abs) == 0;
    int rv = real_unlink(path);
    if (rv == 0 && known)
        unlinked(abs, 0);
    return rv;
}

int remove(const char *path)
{
    char abs[PATH_MAX];
    struct stat st;
    int known = at_path(AT_FDCWD, path, abs, sizeof abs) == 0;
    int dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
    int rv = real_remove(path);
    if (rv == 0 && known)
        unlinked(abs, dir);
    return rv;
}
