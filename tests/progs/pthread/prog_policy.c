/*
 * prog_policy.c - what each of 4 threads and main sees of its OS thread's
 * scheduling policy: sched_getscheduler(0) (the program's view) and field
 * 41 of /proc/self/task/TID/stat (the kernel's). Prints
 * "kernel_batch=N" (threads whose OS thread runs SCHED_BATCH),
 * "seen_other=N" (threads that read SCHED_OTHER) and "threads=5".
 * tests/test_preload_pthread.c runs it natively and under the shim.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int kernel_batch, seen_other;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int kernel_policy(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", (long)syscall(SYS_gettid));
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');   /* the name may hold spaces */
    for (int field = 2; p && *p; p++)
        if (*p == ' ' && ++field == 41)
            return atoi(p + 1);
    return -1;
}

static void look(void)
{
    int k = kernel_policy(), s = sched_getscheduler(0);
    pthread_mutex_lock(&lock);
    kernel_batch += k == SCHED_BATCH;
    seen_other += s == SCHED_OTHER;
    pthread_mutex_unlock(&lock);
}

static void *thread(void *arg)
{
    (void)arg;
    usleep(20000);                 /* every thread started: every hub up */
    look();
    return NULL;
}

int main(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, thread, NULL) != 0)
            return 1;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    look();
    printf("kernel_batch=%d\nseen_other=%d\nthreads=5\n", kernel_batch, seen_other);
    return 0;
}
