/*
 * prog_fork_fds.c - what a forked child keeps of libgreen's descriptors.
 * Each hub has its own (an epoll set, a timerfd, an eventfd: anon inodes,
 * numbered near the top of the descriptor range); a child of fork has one
 * OS thread and so at most one hub. Forks twice, from the main thread and
 * from a thread on another OS thread than main's (under the shim with
 * several hubs, a thread of another hub), and each child exits with the
 * number of anon-inode descriptors it found open before doing anything
 * else. Output: key=value lines.
 */
#include "../wait/progs_common.h"
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int anon_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return 100;
    for (struct dirent *e; (e = readdir(d));) {
        char path[300], target[128];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        if (k > 0) {
            target[k] = 0;
            n += strncmp(target, "anon_inode:", 11) == 0;
        }
    }
    closedir(d);
    return n;
}

/* Forks; the child exits with its count. Returns the count or -1. */
static int fork_and_count(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(anon_fds());
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int release, elsewhere_count = -1, elsewhere_seen;

/* On another OS thread than main's: fork from here. Else wait, so that
 * the next thread is placed elsewhere. */
static void *worker(void *arg)
{
    (void)arg;
    if (syscall(SYS_gettid) != getpid()) {
        int n = fork_and_count();
        pthread_mutex_lock(&m);
        elsewhere_count = n;
        elsewhere_seen = 1;
        pthread_cond_broadcast(&c);
        pthread_mutex_unlock(&m);
        return NULL;
    }
    pthread_mutex_lock(&m);
    while (!release && !elsewhere_seen)
        pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(void)
{
    pthread_t t[4];
    int n = 0;
    for (; n < 4; n++) {
        pthread_create(&t[n], NULL, worker, NULL);
        usleep(20000);
        pthread_mutex_lock(&m);
        int seen = elsewhere_seen;
        pthread_mutex_unlock(&m);
        if (seen) {
            n++;
            break;
        }
    }
    pthread_mutex_lock(&m);
    release = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("hooked_fork=%d\n", hooked((void *)fork));
    printf("parent_anon_fds=%d\n", anon_fds());
    printf("main_child_anon_fds=%d\n", fork_and_count());
    printf("elsewhere=%d\n", elsewhere_seen);
    printf("elsewhere_child_anon_fds=%d\n", elsewhere_count);
    return 0;
}
