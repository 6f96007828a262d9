/*
 * prog_fsync - fsync, fdatasync, syncfs and sync_file_range under the
 * shim: the kernel's answers, and whether other threads run meanwhile.
 * Usage: prog_fsync calls     every call on a file, a pipe and a closed
 *                             descriptor: one "label: ret=R errno=E" line
 *                             each (errno is EDOM before each call, so a
 *                             success that left it shows errno=EDOM)
 *        prog_fsync overlap   a thread fsyncs a file 20 times after
 *                             writing 64 KiB each time while another
 *                             counts its own turns (sched_yield in a
 *                             loop); prints "overlap=N": fsyncs during
 *                             which the counter moved. With one hub that
 *                             is only possible when the flush left the
 *                             hub's OS thread (the worker pool).
 * Both print "HOOK read=<file> pthread_create=<file> fsync=<file>" first.
 */
#include "progs_io.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static void show(const char *label, int r)
{
    printf("%s: ret=%d errno=%s\n", label, r,
           errno == EDOM ? "EDOM" : errno == EBADF ? "EBADF" :
           errno == EINVAL ? "EINVAL" : errno == ESPIPE ? "ESPIPE" :
           errno == EROFS ? "EROFS" : "other");
    fflush(stdout);
}

#define TRY(label, expr) do { errno = EDOM; int r_ = (expr); show(label, r_); } while (0)

static char path[] = "/tmp/prog_fsync_XXXXXX";

static void *calls(void *arg)
{
    (void)arg;
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, "data", 4) != 4)
        return NULL;
    unlink(path);
    int p[2];
    if (pipe(p) != 0)
        return NULL;
    int bad = dup(0);
    close(bad);
    TRY("fsync file", fsync(fd));
    TRY("fsync pipe", fsync(p[0]));
    TRY("fsync closed", fsync(bad));
    TRY("fdatasync file", fdatasync(fd));
    TRY("fdatasync pipe", fdatasync(p[1]));
    TRY("fdatasync closed", fdatasync(bad));
    TRY("syncfs file", syncfs(fd));
    TRY("syncfs closed", syncfs(bad));
    unsigned w = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                 SYNC_FILE_RANGE_WAIT_AFTER;
    TRY("sync_file_range file", sync_file_range(fd, 0, 0, w));
    TRY("sync_file_range file start", sync_file_range(fd, 0, 4, SYNC_FILE_RANGE_WRITE));
    TRY("sync_file_range pipe", sync_file_range(p[0], 0, 0, w));
    TRY("sync_file_range closed", sync_file_range(bad, 0, 0, w));
    TRY("sync_file_range bad flags", sync_file_range(fd, 0, 0, 0x80));
    TRY("sync_file_range negative", sync_file_range(fd, -1, 0, w));
    close(fd);
    close(p[0]);
    close(p[1]);
    return NULL;
}

static atomic_int turns, done;

static void *counter(void *arg)
{
    (void)arg;
    while (!atomic_load(&done)) {
        atomic_fetch_add(&turns, 1);
        sched_yield();
    }
    return NULL;
}

static void *flusher(void *arg)
{
    (void)arg;
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    unlink(path);
    static char buf[65536];
    memset(buf, 'x', sizeof buf);
    int overlap = 0;
    for (int k = 0; k < 20; k++) {
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            break;
        int before = atomic_load(&turns);
        if (fsync(fd) != 0)
            printf("fsync failed: errno %d\n", errno);
        overlap += atomic_load(&turns) != before;
    }
    close(fd);
    printf("overlap=%d\n", overlap);
    atomic_store(&done, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    printf("HOOK read=%s pthread_create=%s fsync=%s\n", prog_lib_of("read"),
           prog_lib_of("pthread_create"), prog_lib_of("fsync"));
    fflush(stdout);
    const char *m = argc > 1 ? argv[1] : "";
    pthread_t a, b;
    if (!strcmp(m, "calls")) {
        pthread_create(&a, NULL, calls, NULL);    /* in a pthread: a green one */
        pthread_join(a, NULL);
        return 0;
    }
    if (!strcmp(m, "overlap")) {
        pthread_create(&b, NULL, counter, NULL);
        pthread_create(&a, NULL, flusher, NULL);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        return 0;
    }
    return 2;
}
