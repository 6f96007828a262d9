/*
 * cases_ipc.c - differential cases of System V and POSIX IPC waits (see
 * diff.h): semop/semtimedop, msgsnd/msgrcv and mq_send/mq_receive (and
 * their timed forms and raw system calls) that wait for another thread of
 * the program or another process, while the program's other threads run;
 * timeouts and how they are checked; a handler during the wait (EINTR
 * always for System V, SA_RESTART honoured for POSIX queues); removal of
 * the object (EIDRM); pthread_cancel (msgrcv, msgsnd and mq_* are
 * cancellation points, semop is none).
 */
#include "diff.h"
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

struct msg {
    long type;
    char text[32];
};

static int new_queue(void)
{
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (q < 0)
        diff_out("msgget: %s", diff_errname(errno));
    return q;
}

static int new_set(int value)
{
    int s = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    if (s < 0) {
        diff_out("semget: %s", diff_errname(errno));
        return s;
    }
    semctl(s, 0, SETVAL, value);
    return s;
}

static char mq_name[64];

/* A POSIX queue of 2 messages of 32 bytes, empty, opened read-write
 * (flags added: O_NONBLOCK). */
static mqd_t new_mq(int flags)
{
    snprintf(mq_name, sizeof mq_name, "/diffmq-%d", (int)getpid());
    mq_unlink(mq_name);
    struct mq_attr a = { .mq_maxmsg = 2, .mq_msgsize = 32 };
    mqd_t m = mq_open(mq_name, O_RDWR | O_CREAT | O_EXCL | flags, 0600, &a);
    if (m == (mqd_t)-1)
        diff_out("mq_open: %s", diff_errname(errno));
    return m;
}

static void drop_mq(mqd_t m)
{
    mq_close(m);
    mq_unlink(mq_name);
}

/* -------------------------------------------- the other side, later */

enum act { SEND, RECEIVE, POST, MQ_SEND, MQ_RECEIVE, RMID_QUEUE, RMID_SET };

struct later {
    enum act act;
    int id;                        /* queue, set or mq descriptor */
    int ms;
};

static void act_now(const struct later *l)
{
    struct msg m = { .type = 7 };
    char buf[32];
    struct sembuf up = { .sem_num = 0, .sem_op = 1 };
    switch (l->act) {
    case SEND:
        strcpy(m.text, "from the other side");
        msgsnd(l->id, &m, sizeof m.text, 0);
        break;
    case RECEIVE:
        msgrcv(l->id, &m, sizeof m.text, 0, 0);
        break;
    case POST:
        semop(l->id, &up, 1);
        break;
    case MQ_SEND:
        mq_send(l->id, "from the other side", 20, 3);
        break;
    case MQ_RECEIVE:
        mq_receive(l->id, buf, sizeof buf, NULL);
        break;
    case RMID_QUEUE:
        msgctl(l->id, IPC_RMID, NULL);
        break;
    case RMID_SET:
        semctl(l->id, 0, IPC_RMID);
        break;
    }
}

/* The other side blocks every signal: an alarm meant for the waiting
 * thread must not cut its sleep short (which thread of several that
 * accept a process-directed signal gets it is the kernel's choice). */
static void *later_thread(void *arg)
{
    struct later *l = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    usleep((useconds_t)l->ms * 1000);
    act_now(l);
    return NULL;
}

/* The other side is a thread of the program (its usleep parks under the
 * shim) or another process. */
struct other {
    pthread_t th;
    pid_t pid;
};

static struct other other_start(struct later *l, bool process)
{
    struct other o = { 0 };
    if (process) {
        o.pid = fork();
        if (o.pid == 0) {
            diff_raw_sleep_ms(l->ms);
            act_now(l);
            _exit(0);
        }
    } else {
        o.th = diff_spawn(later_thread, l);
    }
    return o;
}

static void other_end(struct other o)
{
    if (o.pid > 0)
        waitpid(o.pid, NULL, 0);
    else
        pthread_join(o.th, NULL);
}

/* Runs the blocking call `expr` while `l` happens 150 ms later, a ticker
 * counting: the call's result, that it waited, and that other threads
 * ran meanwhile. */
#define WAIT_FOR(label, l, process, expr)                                   \
    do {                                                                    \
        struct other o_ = other_start((l), (process));                      \
        pthread_t tk_ = diff_ticker_start();                                \
        int before_ = diff_ticks();                                         \
        int64_t t0_ = diff_now();                                           \
        CALL((label), (expr));                                              \
        int during_ = diff_ticks() - before_;                               \
        DIFF_TOOK((label), t0_, 90, 3000);                                  \
        diff_ticker_stop(tk_);                                              \
        diff_out("other threads ran meanwhile: %d", during_ > 10);          \
        other_end(o_);                                                      \
    } while (0)

/* ---------------------------------------------------------- System V */

DIFF_CASE(ipc, msgrcv_waits_for_a_message)
{
    for (int process = 0; process < 2; process++) {
        diff_out("sender: %s", process ? "another process" : "a thread");
        int q = new_queue();
        struct later l = { SEND, q, 150 };
        struct msg m = { 0 };
        WAIT_FOR("msgrcv", &l, process, msgrcv(q, &m, sizeof m.text, 0, 0));
        diff_out("type %ld: %s", m.type, m.text);
        memset(&m, 0, sizeof m);
        WAIT_FOR("msgrcv of type 7", &l, process, msgrcv(q, &m, sizeof m.text, 7, 0));
        WAIT_FOR("syscall msgrcv", &l, process,
                 syscall(SYS_msgrcv, q, &m, sizeof m.text, 0L, 0));
        diff_out("type %ld: %s", m.type, m.text);
        msgctl(q, IPC_RMID, NULL);
    }
}

DIFF_CASE(ipc, msgsnd_to_a_full_queue_waits_for_a_receiver)
{
    for (int process = 0; process < 2; process++) {
        diff_out("receiver: %s", process ? "another process" : "a thread");
        int q = new_queue();
        struct msqid_ds ds;
        msgctl(q, IPC_STAT, &ds);
        ds.msg_qbytes = 32;        /* one message fills it */
        CALL("IPC_SET", msgctl(q, IPC_SET, &ds));
        struct msg m = { .type = 1, .text = "first" };
        CALL("msgsnd", msgsnd(q, &m, sizeof m.text, 0));
        CALL("msgsnd IPC_NOWAIT", msgsnd(q, &m, sizeof m.text, IPC_NOWAIT));
        struct later l = { RECEIVE, q, 150 };
        strcpy(m.text, "second");
        WAIT_FOR("msgsnd", &l, process, msgsnd(q, &m, sizeof m.text, 0));
        WAIT_FOR("syscall msgsnd", &l, process, syscall(SYS_msgsnd, q, &m, sizeof m.text, 0));
        msgctl(q, IPC_STAT, &ds);
        diff_out("messages: %lu", (unsigned long)ds.msg_qnum);
        msgctl(q, IPC_RMID, NULL);
    }
}

DIFF_CASE(ipc, semop_waits_for_a_post)
{
    for (int process = 0; process < 2; process++) {
        diff_out("poster: %s", process ? "another process" : "a thread");
        int s = new_set(0);
        struct later l = { POST, s, 150 };
        struct sembuf down = { .sem_num = 0, .sem_op = -1 };
        struct sembuf undo = { .sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO };
        struct timespec two = { 2, 0 };
        WAIT_FOR("semop", &l, process, semop(s, &down, 1));
        WAIT_FOR("semop SEM_UNDO", &l, process, semop(s, &undo, 1));
        WAIT_FOR("semtimedop 2 s", &l, process, semtimedop(s, &down, 1, &two));
#ifdef SYS_semop
        WAIT_FOR("syscall semop", &l, process, syscall(SYS_semop, s, &down, 1));
#endif
        WAIT_FOR("syscall semtimedop", &l, process,
                 syscall(SYS_semtimedop, s, &down, 1, &two));
        diff_out("value %d", semctl(s, 0, GETVAL));
        semctl(s, 0, IPC_RMID);
    }
}

/* Several operations at once are done all or none: while one waits, the
 * others are not applied. A wait for zero (sem_op 0) ends when another
 * process takes the last unit. */
DIFF_CASE(ipc, semop_of_several_operations_is_all_or_none)
{
    int s = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
    semctl(s, 0, SETVAL, 1);
    semctl(s, 1, SETVAL, 0);
    struct sembuf both[2] = { { 0, -1, 0 }, { 1, -1, 0 } };
    pid_t pid = fork();
    if (pid == 0) {
        diff_raw_sleep_ms(150);
        struct sembuf up1 = { 1, 1, 0 };
        semop(s, &up1, 1);
        _exit(0);
    }
    /* The ticker starts after the fork: under the shim with ASan its
     * sleeps allocate (the hub's timer heap) on another OS thread, and
     * ASan's allocator has no fork handler: a child forked while that
     * thread held its lock would wait for it for ever. */
    pthread_t tk = diff_ticker_start();
    usleep(50000);
    diff_out("before: sem0 %d sem1 %d", semctl(s, 0, GETVAL), semctl(s, 1, GETVAL));
    int before = diff_ticks();
    int64_t t0 = diff_now();
    CALL("semop of two", semop(s, both, 2));
    DIFF_TOOK("semop of two", t0, 50, 3000);
    diff_out("other threads ran meanwhile: %d", diff_ticks() - before > 10);
    diff_ticker_stop(tk);
    waitpid(pid, NULL, 0);
    diff_out("after: sem0 %d sem1 %d", semctl(s, 0, GETVAL), semctl(s, 1, GETVAL));
    semctl(s, 0, SETVAL, 1);
    pid = fork();
    if (pid == 0) {
        diff_raw_sleep_ms(150);
        struct sembuf down0 = { 0, -1, 0 };
        semop(s, &down0, 1);
        _exit(0);
    }
    struct sembuf zero = { 0, 0, 0 };
    t0 = diff_now();
    CALL("semop wait for zero", semop(s, &zero, 1));
    DIFF_TOOK("wait for zero", t0, 90, 3000);
    waitpid(pid, NULL, 0);
    semctl(s, 0, IPC_RMID);
}

DIFF_CASE(ipc, semtimedop_times_out_with_eagain)
{
    int s = new_set(0);
    struct sembuf down = { .sem_num = 0, .sem_op = -1 };
    struct timespec t = { 0, 150000000 };
    pthread_t tk = diff_ticker_start();
    int before = diff_ticks();
    int64_t t0 = diff_now();
    CALL("semtimedop 150 ms", semtimedop(s, &down, 1, &t));
    int during = diff_ticks() - before;
    DIFF_TOOK("semtimedop", t0, 90, 3000);
    diff_ticker_stop(tk);
    diff_out("other threads ran meanwhile: %d", during > 10);
    t0 = diff_now();
    CALL("syscall semtimedop 150 ms", syscall(SYS_semtimedop, s, &down, 1, &t));
    DIFF_TOOK("syscall semtimedop", t0, 90, 3000);
    semctl(s, 0, IPC_RMID);
}

/* The timeout is read and checked before any operation: a bad pointer is
 * EFAULT and an invalid timeout EINVAL even when the operation could be
 * done at once; a zero timeout and IPC_NOWAIT never wait. */
DIFF_CASE(ipc, semtimedop_checks_its_timeout_first)
{
    int s = new_set(1);
    struct sembuf down = { .sem_num = 0, .sem_op = -1 };
    struct timespec bad = { 0, 2000000000L }, neg = { -1, 0 }, zero = { 0, 0 };
    CALL("bad pointer", semtimedop(s, &down, 1, (const struct timespec *)8));
    CALL("tv_nsec 2e9", semtimedop(s, &down, 1, &bad));
    CALL("tv_sec -1", semtimedop(s, &down, 1, &neg));
    diff_out("value %d", semctl(s, 0, GETVAL));
    CALL("zero timeout", semtimedop(s, &down, 1, &zero));
    int64_t t0 = diff_now();
    CALL("zero timeout, value 0", semtimedop(s, &down, 1, &zero));
    struct sembuf nowait = { .sem_num = 0, .sem_op = -1, .sem_flg = IPC_NOWAIT };
    CALL("IPC_NOWAIT, value 0", semop(s, &nowait, 1));
    DIFF_TOOK("no wait", t0, 0, 50);
    CALL("bad set", semop(-1, &down, 1));
    CALL("bad semaphore number", semop(s, &(struct sembuf){ 5, -1, 0 }, 1));
    CALL("bad operations pointer", semop(s, (struct sembuf *)8, 1));
    semctl(s, 0, IPC_RMID);
    CALL("removed set", semop(s, &down, 1));
}

DIFF_CASE(ipc, msgrcv_that_never_waits)
{
    int q = new_queue();
    struct msg m;
    int64_t t0 = diff_now();
    CALL("IPC_NOWAIT, empty", msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT));
    CALL("MSG_COPY without IPC_NOWAIT", msgrcv(q, &m, sizeof m.text, 0, MSG_COPY));
    DIFF_TOOK("no wait", t0, 0, 50);
    struct msg big = { .type = 1, .text = "a longer message" };
    msgsnd(q, &big, sizeof big.text, 0);
    CALL("too small (E2BIG)", msgrcv(q, &m, 4, 0, 0));
    CALL("MSG_NOERROR", msgrcv(q, &m, 4, 0, MSG_NOERROR));
    CALL("bad queue", msgrcv(-1, &m, sizeof m.text, 0, 0));
    CALL("bad type for msgsnd", msgsnd(q, &(struct msg){ .type = 0 }, 4, 0));
    msgctl(q, IPC_RMID, NULL);
}

/* The queue or set is removed while a thread waits on it: EIDRM. */
DIFF_CASE(ipc, removal_wakes_waiters_with_eidrm)
{
    int q = new_queue();
    struct later l = { RMID_QUEUE, q, 150 };
    struct msg m;
    WAIT_FOR("msgrcv", &l, false, msgrcv(q, &m, sizeof m.text, 0, 0));
    int s = new_set(0);
    struct later ls = { RMID_SET, s, 150 };
    struct sembuf down = { .sem_num = 0, .sem_op = -1 };
    WAIT_FOR("semop", &ls, false, semop(s, &down, 1));
}

/* ------------------------------------------------------------ POSIX */

DIFF_CASE(ipc, mq_receive_waits_for_a_message)
{
    for (int process = 0; process < 2; process++) {
        diff_out("sender: %s", process ? "another process" : "a thread");
        mqd_t m = new_mq(0);
        struct later l = { MQ_SEND, m, 150 };
        char buf[32] = "";
        unsigned prio = 0;
        WAIT_FOR("mq_receive", &l, process, mq_receive(m, buf, sizeof buf, &prio));
        diff_out("prio %u: %s", prio, buf);
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += 3;
        WAIT_FOR("mq_timedreceive", &l, process, mq_timedreceive(m, buf, sizeof buf, &prio, &t));
        WAIT_FOR("syscall mq_timedreceive", &l, process,
                 syscall(SYS_mq_timedreceive, m, buf, sizeof buf, &prio, NULL));
        drop_mq(m);
    }
}

DIFF_CASE(ipc, mq_send_to_a_full_queue_waits_for_a_receiver)
{
    for (int process = 0; process < 2; process++) {
        diff_out("receiver: %s", process ? "another process" : "a thread");
        mqd_t m = new_mq(0);
        CALL("mq_send 1", mq_send(m, "one", 4, 1));
        CALL("mq_send 2", mq_send(m, "two", 4, 1));
        struct later l = { MQ_RECEIVE, m, 150 };
        WAIT_FOR("mq_send", &l, process, mq_send(m, "three", 6, 1));
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += 3;
        WAIT_FOR("mq_timedsend", &l, process, mq_timedsend(m, "four", 5, 1, &t));
        WAIT_FOR("syscall mq_timedsend", &l, process,
                 syscall(SYS_mq_timedsend, m, "five", 5, 1, NULL));
        struct mq_attr a;
        mq_getattr(m, &a);
        diff_out("messages: %ld", a.mq_curmsgs);
        drop_mq(m);
    }
}

/* Timeouts: one that expires (ETIMEDOUT), one long past (at once), an
 * invalid one (EINVAL, checked before the message is taken), a bad
 * pointer (EFAULT); a description opened O_NONBLOCK says EAGAIN. */
DIFF_CASE(ipc, mq_timeouts_and_nonblocking_descriptions)
{
    mqd_t m = new_mq(0);
    char buf[32];
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += 150000000;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    pthread_t tk = diff_ticker_start();
    int before = diff_ticks();
    int64_t t0 = diff_now();
    CALL("mq_timedreceive 150 ms", mq_timedreceive(m, buf, sizeof buf, NULL, &t));
    int during = diff_ticks() - before;
    DIFF_TOOK("mq_timedreceive", t0, 90, 3000);
    diff_ticker_stop(tk);
    diff_out("other threads ran meanwhile: %d", during > 10);
    struct timespec past = { 1, 0 }, bad = { 0, -1 };
    t0 = diff_now();
    CALL("long past", mq_timedreceive(m, buf, sizeof buf, NULL, &past));
    CALL("invalid, empty", mq_timedreceive(m, buf, sizeof buf, NULL, &bad));
    mq_send(m, "x", 2, 0);
    CALL("invalid, a message", mq_timedreceive(m, buf, sizeof buf, NULL, &bad));
    CALL("bad pointer, a message", mq_timedreceive(m, buf, sizeof buf, NULL,
                                                   (const struct timespec *)8));
    CALL("buffer too small", mq_receive(m, buf, 4, NULL));
    struct mq_attr a;
    mq_getattr(m, &a);
    diff_out("messages: %ld", a.mq_curmsgs);
    mq_send(m, "y", 2, 0);
    CALL("long past, full", mq_timedsend(m, "z", 2, 0, &past));
    CALL("invalid, full", mq_timedsend(m, "z", 2, 0, &bad));
    DIFF_TOOK("no wait", t0, 0, 50);
    drop_mq(m);
    m = new_mq(O_NONBLOCK);
    CALL("O_NONBLOCK empty", mq_receive(m, buf, sizeof buf, NULL));
    mq_send(m, "1", 2, 0);
    mq_send(m, "2", 2, 0);
    CALL("O_NONBLOCK full", mq_send(m, "3", 2, 0));
    drop_mq(m);
    CALL("closed descriptor", mq_receive(m, buf, sizeof buf, NULL));
}

/* ----------------------------------------------------------- signals */

/* SIGALRM 100 ms into each wait, the other side acting at 300 ms:
 * System V waits fail with EINTR with or without SA_RESTART; POSIX queue
 * waits fail without it and go on with it. */
static void interrupted(int flags)
{
    diff_count_signal(SIGALRM, flags);
    int q = new_queue(), s = new_set(0);
    mqd_t m = new_mq(0);
    struct msg msg;
    char buf[32];
    struct sembuf down = { .sem_num = 0, .sem_op = -1 };
    struct later ls[] = { { SEND, q, 300 }, { POST, s, 300 }, { MQ_SEND, m, 300 } };
    const char *names[] = { "msgrcv", "semop", "mq_receive" };
    for (int i = 0; i < 3; i++) {
        diff_signals_take();
        struct other o = other_start(&ls[i], false);
        int64_t t0 = diff_now();
        diff_alarm_ms(100);
        switch (i) {
        case 0: CALL(names[i], msgrcv(q, &msg, sizeof msg.text, 0, 0)); break;
        case 1: CALL(names[i], semop(s, &down, 1)); break;
        default: CALL(names[i], mq_receive(m, buf, sizeof buf, NULL)); break;
        }
        DIFF_TOOK(names[i], t0, 60, 3000);
        int64_t ms = (diff_now() - t0) / 1000000;
        diff_out("%s returned %s the other side acted", names[i], ms < 250 ? "before" : "after");
        diff_out("handler ran %d", diff_signals_take());
        other_end(o);
    }
    msgctl(q, IPC_RMID, NULL);
    semctl(s, 0, IPC_RMID);
    drop_mq(m);
    signal(SIGALRM, SIG_DFL);
}

DIFF_CASE(ipc, a_handler_interrupts_ipc_waits)
{
    interrupted(0);
}

DIFF_CASE(ipc, sa_restart_restarts_only_posix_queue_waits)
{
    interrupted(SA_RESTART);
}

/* ------------------------------------------------------ cancellation */

struct canc {
    int kind;                      /* 0 msgrcv, 1 mq_receive, 2 semop, 3 msgsnd */
    int id;
    atomic_int waiting;
};

static void *wait_then_sleep(void *arg)
{
    struct canc *c = arg;
    struct msg m = { .type = 1 };
    char buf[32];
    struct sembuf down = { .sem_num = 0, .sem_op = -1 };
    atomic_store(&c->waiting, 1);
    long r = -1;
    switch (c->kind) {
    case 0: r = msgrcv(c->id, &m, sizeof m.text, 0, 0); break;
    case 1: r = mq_receive(c->id, buf, sizeof buf, NULL); break;
    case 2: r = semop(c->id, &down, 1); break;
    default: r = msgsnd(c->id, &m, sizeof m.text, 0); break;
    }
    diff_out("the wait returned %ld", r);
    usleep(1000);                  /* a cancellation point */
    diff_out("not cancelled");
    return NULL;
}

/* pthread_cancel 50 ms into a wait; the other side acts at 200 ms. */
DIFF_CASE(ipc, pthread_cancel_of_ipc_waits)
{
    const char *names[] = { "msgrcv", "mq_receive", "semop", "msgsnd" };
    for (int k = 0; k < 4; k++) {
        int q = new_queue(), s = new_set(0);
        mqd_t m = new_mq(0);
        struct msqid_ds ds;
        msgctl(q, IPC_STAT, &ds);
        ds.msg_qbytes = 32;
        msgctl(q, IPC_SET, &ds);
        struct msg full = { .type = 1 };
        if (k == 3)
            msgsnd(q, &full, sizeof full.text, 0);
        struct canc c = { .kind = k, .id = k == 1 ? m : k == 2 ? s : q };
        struct later l = { k == 0 ? SEND : k == 1 ? MQ_SEND : k == 2 ? POST : RECEIVE, c.id, 200 };
        pthread_t th = diff_spawn(wait_then_sleep, &c);
        while (!atomic_load(&c.waiting))
            usleep(1000);
        usleep(50000);
        struct other o = other_start(&l, false);
        pthread_cancel(th);
        void *res = NULL;
        pthread_join(th, &res);
        diff_out("%s: %s", names[k], res == PTHREAD_CANCELED ? "cancelled" : "ended");
        other_end(o);
        msgctl(q, IPC_RMID, NULL);
        semctl(s, 0, IPC_RMID);
        drop_mq(m);
    }
}

static void *cancelled_at_entry(void *arg)
{
    struct canc *c = arg;
    struct msg m;
    char buf[32];
    pthread_cancel(pthread_self());  /* pending, deferred */
    long r;
    if (c->kind == 0)
        r = msgrcv(c->id, &m, sizeof m.text, 0, IPC_NOWAIT);
    else
        r = mq_receive(c->id, buf, sizeof buf, NULL);
    diff_out("the call returned %ld", r);
    return NULL;
}

/* A cancel already pending acts on entry to a cancellation point, even
 * one that would not wait (a message is there, or IPC_NOWAIT). */
DIFF_CASE(ipc, a_pending_cancel_acts_on_entry)
{
    int q = new_queue();
    mqd_t m = new_mq(0);
    struct msg one = { .type = 1, .text = "x" };
    msgsnd(q, &one, sizeof one.text, 0);
    mq_send(m, "x", 2, 0);
    for (int k = 0; k < 2; k++) {
        struct canc c = { .kind = k, .id = k ? m : q };
        pthread_t th = diff_spawn(cancelled_at_entry, &c);
        void *res = NULL;
        pthread_join(th, &res);
        diff_out("%s: %s", k ? "mq_receive" : "msgrcv IPC_NOWAIT",
                 res == PTHREAD_CANCELED ? "cancelled" : "ended");
    }
    struct msqid_ds ds;
    msgctl(q, IPC_STAT, &ds);
    struct mq_attr a;
    mq_getattr(m, &a);
    diff_out("left: %lu and %ld", (unsigned long)ds.msg_qnum, a.mq_curmsgs);
    msgctl(q, IPC_RMID, NULL);
    drop_mq(m);
}
