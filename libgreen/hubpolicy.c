/*
 * hubpolicy.c - the kernel scheduling policy of the hubs' OS threads:
 * SCHED_BATCH under the shim (GREEN_HUB_BATCH), and keeping the program
 * from seeing it.
 *
 * Why. A hub is one OS thread that serves many green threads. When it
 * sleeps in epoll_wait and a client's write wakes it, the kernel's
 * wake-up preemption runs the hub at once on the waker's CPU: with a
 * client on the same machine (a load generator, a proxy, a local
 * application), the client is interrupted after each request it sends,
 * the hub answers that one request and sleeps again, and each of them
 * pays a context switch per request. A native daemon's threads are woken
 * the same way, but with two hubs on two CPUs that share them with the
 * client, the client lost its CPU to a hub 24,000 times in 3 s where it
 * lost it 16,000 times to memcached's own threads (memcached -t 4, the
 * daemon in a session of its own, /usr/bin/time's involuntary switches
 * of memcaslap), and served 0.89x native. SCHED_BATCH is the kernel's
 * own word for a thread that wants throughput and not wake-up latency:
 * a woken SCHED_BATCH thread does not preempt the running one; it runs
 * when that one blocks or its slice ends, or on another CPU that is
 * idle. The client then sends a batch of requests before the hub
 * answers them all. Measured (`SETSID=1 HUBS="2 1" ROUNDS=7 DURATION=3
 * bench/memcached.sh build-bench OLD/libgreen.so`, OLD a release build
 * of the commit before, the daemon in a session of its own): two hubs
 * 1.07x native, ahead of native in 7 of 7 rounds, where the build
 * without it gave 0.93x (behind in 7 of 7); with the client in the
 * daemon's session 1.26x against 1.24x.
 *
 * What it costs: a hub woken while its CPU runs another busy thread,
 * with no idle CPU, waits until that thread blocks or its slice ends
 * (milliseconds) instead of preempting it, unless the kernel moves it
 * to another CPU. GREEN_HUB_BATCH=0 keeps the kernel's default.
 *
 * Rules. A hub's OS thread is switched from SCHED_OTHER to SCHED_BATCH
 * when its hub is made (ctx_create), and only from SCHED_OTHER: a program
 * started under another policy (chrt -b, -i, a real-time one) keeps it.
 * c->batch records that libgreen made the change. The program never sees
 * it: sched_getscheduler and sched_getattr of a batch hub's thread answer
 * SCHED_OTHER (hooks/sched.c); a program that sets a policy on such a
 * thread itself (sched_setscheduler, sched_setattr) gets it, and the flag
 * is dropped, so what it set is what it reads back. Processes the
 * program starts get the policy it would see: exec and posix_spawn
 * (popen and system included) switch the calling OS thread back to
 * SCHED_OTHER around the call, and the OS threads libgreen starts
 * (offload workers, monitor, extra hubs) are created with an explicit
 * SCHED_OTHER (green__hubpolicy_attr) so that none inherits it. A forked
 * child keeps its hub, so its batch OS thread and the flag, as it keeps
 * everything else of the hub.
 *
 * What the program can still tell: /proc/PID/task/TID/stat and sched
 * (and ps -o cls, chrt -p from outside) show the kernel's policy, as
 * they show the hubs' thread count; OS threads the program starts
 * around libgreen (clone, pthread_create found with dlsym(RTLD_NEXT))
 * from a green thread inherit SCHED_BATCH. README "Known differences".
 *
 * Rejected: a longer EEVDF slice for the hubs (sched_attr.sched_runtime,
 * Linux 6.12+): measured alike with and without (memcached, 3 ms and
 * 6 ms); spinning before sleeping (hub.c, "Rejected").
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>

int green__hub_batch;              /* settings: GREEN_HUB_BATCH */
bool green__hub_batch_used;        /* some hub was switched (c->batch) */

/* c->batch is written by the program's sched_setscheduler of any thread
 * (hooks/sched.c) and read by every hub: relaxed atomics. */
static bool batch_of(const struct green__ctx *c)
{
    return __atomic_load_n(&c->batch, __ATOMIC_RELAXED);
}

static int set_policy(pid_t tid, int policy)
{
    struct sched_param p = { 0 };
    return (int)green__syscall(SYS_sched_setscheduler, tid, policy, &p);
}

void green__hubpolicy_enter(struct green__ctx *c)
{
    if (!green__hub_batch)
        return;
    if (green__syscall(SYS_sched_getscheduler, 0) != SCHED_OTHER)
        return;                    /* the program's own choice, or reset-on-fork */
    if (set_policy(0, SCHED_BATCH) == 0) {
        __atomic_store_n(&c->batch, true, __ATOMIC_RELAXED);
        __atomic_store_n(&green__hub_batch_used, true, __ATOMIC_RELAXED);
    }
}

struct green__ctx *green__hubpolicy_ctx(pid_t tid)
{
    if (!__atomic_load_n(&green__hub_batch_used, __ATOMIC_RELAXED))
        return NULL;
    struct green__ctx *self = green__tls_ctx;
    struct green__ctx *c = tid == 0 || (self && tid == self->tid) ? self
                                                                  : green__hub_by_tid(tid);
    return c && batch_of(c) ? c : NULL;
}

bool green__hubpolicy_suspend(void)
{
    struct green__ctx *c = green__tls_ctx;
    if (!c || !batch_of(c) || green__syscall(SYS_gettid) != c->tid)
        return false;              /* a vfork-like child: not our thread */
    return set_policy(0, SCHED_OTHER) == 0;
}

void green__hubpolicy_resume(bool suspended)
{
    if (suspended)
        set_policy(0, SCHED_BATCH);
}

void green__hubpolicy_attr(pthread_attr_t *a)
{
    struct green__ctx *c = green__tls_ctx;
    if (!c || !batch_of(c))
        return;
    struct sched_param p = { 0 };
    pthread_attr_setinheritsched(a, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(a, SCHED_OTHER);
    pthread_attr_setschedparam(a, &p);
}
