/*
 * chan.c - channels: FIFO queues of void * messages between green threads
 * of one OS thread (gevent.queue.Queue, a buffered Go channel).
 *
 * What it is. A ring buffer plus two wait queues: receivers parked on an
 * empty channel and senders parked on a full bounded one. Capacity 0 means
 * unbounded: the ring doubles when full and send never parks. A bounded
 * ring also grows by doubling, up to its bound, so green_chan_create(1 << 30)
 * does not allocate a gigabyte up front.
 *
 * Direct hand-off. A parked thread keeps a struct chan_wait on its own stack
 * and points its wait node's data word at it. A sender that finds a parked
 * receiver writes the message straight into the receiver's chan_wait, marks
 * it done and readies it; a receiver that takes a message from a full
 * bounded ring moves the first parked sender's message into the ring, marks
 * that sender done and readies it. Messages therefore keep their FIFO order
 * and are never lost: a node in a wait queue always belongs to a PARKED
 * thread (sched.c: a timeout or a kill unlinks the node as it wakes the
 * thread), so a thread popped from a queue is guaranteed to be woken with
 * code 0 and to see done. The chan_wait stays valid because the thread
 * cannot leave its park before it is readied.
 *
 * Invariants.
 *  - receivers is non-empty only while the ring is empty and open;
 *  - senders is non-empty only while a bounded ring is full and open;
 *  - after close: no one is parked; send fails with EPIPE; recv drains the
 *    ring and then fails with EPIPE.
 *
 * Destroy wakes every parked thread with EPIPE before freeing. A woken
 * thread returns at once without touching the channel again, so the free
 * is safe even though those threads run later.
 *
 * Rejected: waking a receiver and letting it re-check the ring (a barging
 * receiver can steal the message, and the woken one loses its place in the
 * queue); a fixed-size ring for unbounded channels (silently blocking or
 * failing where the user asked for no bound).
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <string.h>

#define MIN_RING 16

struct green_chan {
    void **ring;                   /* cap slots, or NULL before first use */
    size_t cap;                    /* allocated slots */
    size_t bound;                  /* max messages buffered; 0 = unbounded */
    size_t head;                   /* index of the oldest message */
    size_t len;                    /* messages buffered */
    bool closed;                   /* green_chan_close was called */
    struct green__waitq senders;   /* parked on a full ring; data: chan_wait */
    struct green__waitq receivers; /* parked on an empty ring; data: chan_wait */
};

/* What a parked sender or receiver exchanges, on its own stack. */
struct chan_wait {
    void *msg;                     /* sender: message to send; receiver: got */
    bool done;                     /* the other side completed the transfer */
};

green_chan_t *green_chan_create(size_t capacity)
{
    if (capacity > SIZE_MAX / 2 / sizeof(void *)) {
        errno = EINVAL;
        return NULL;
    }
    green_chan_t *ch = calloc(1, sizeof *ch);
    if (!ch) {
        errno = ENOMEM;
        return NULL;
    }
    ch->bound = capacity;
    return ch;
}

static bool ring_full(const green_chan_t *ch)
{
    return ch->bound && ch->len >= ch->bound;
}

/* Double the ring (up to the bound). Returns 0 or ENOMEM. */
static int ring_grow(green_chan_t *ch)
{
    size_t ncap = ch->cap ? ch->cap * 2 : MIN_RING;
    if (ch->bound && ncap > ch->bound)
        ncap = ch->bound;
    if (ncap > SIZE_MAX / sizeof(void *))
        return ENOMEM;
    void **r = malloc(ncap * sizeof *r);
    if (!r)
        return ENOMEM;
    for (size_t i = 0; i < ch->len; i++)
        r[i] = ch->ring[(ch->head + i) % ch->cap];
    free(ch->ring);
    ch->ring = r;
    ch->cap = ncap;
    ch->head = 0;
    return 0;
}

/* Append msg to a ring that is not full. Returns 0 or ENOMEM. */
static int ring_push(green_chan_t *ch, void *msg)
{
    if (ch->len == ch->cap) {
        int e = ring_grow(ch);
        if (e)
            return e;
    }
    ch->ring[(ch->head + ch->len) % ch->cap] = msg;
    ch->len++;
    return 0;
}

static void *ring_pop(green_chan_t *ch)
{
    void *msg = ch->ring[ch->head];
    ch->head = (ch->head + 1) % ch->cap;
    ch->len--;
    return msg;
}

/* Complete the transfer of the first thread parked in q: swap msg with its
 * chan_wait's and ready it. Returns false if q is empty. */
static bool complete_first(struct green__waitq *q, void **msg)
{
    struct green__wnode *n = green__waitq_pop(q);
    if (!n)
        return false;
    green__assert("chan", n->t->state == GREEN_PARKED);
    struct chan_wait *w = (struct chan_wait *)n->data;
    void *theirs = w->msg;
    w->msg = *msg;
    *msg = theirs;
    w->done = true;
    green__ready(n->t, 0);
    return true;
}

/* One non-parking send attempt: 0, or EPIPE, EAGAIN (full), ENOMEM. */
static int send_now(green_chan_t *ch, void *msg)
{
    if (ch->closed)
        return EPIPE;
    if (complete_first(&ch->receivers, &msg))
        return 0;
    if (ring_full(ch))
        return EAGAIN;
    return ring_push(ch, msg);
}

/* One non-parking receive attempt: 0, or EPIPE (closed and drained),
 * EAGAIN (empty). */
static int recv_now(green_chan_t *ch, void **msg)
{
    if (ch->len == 0)
        return ch->closed ? EPIPE : EAGAIN;
    *msg = ring_pop(ch);
    void *next = NULL;
    if (complete_first(&ch->senders, &next))
        ring_push(ch, next);   /* cannot fail: a slot was just freed */
    return 0;
}

/* Park in q until the other side completes *w. Returns 0 or an errno
 * value; after EPIPE the channel may be gone. May switch. */
static int chan_park(green_chan_t *ch, struct green__waitq *q,
                     struct chan_wait *w, int64_t deadline)
{
    struct green_thread *self = green__current();
    self->wnode.data = (uintptr_t)w;
    int code = green__park(GREEN_WHY_CHAN, (uintptr_t)ch, q, deadline);
    return w->done ? 0 : code;
}

/* Check arguments and set *deadline; an errno value or 0. */
static int chan_prologue(green_chan_t *ch, int64_t timeout_ns, int64_t *deadline)
{
    if (!ch || timeout_ns < GREEN_FOREVER)
        return EINVAL;
    if (!green__ctx_get())
        return ENOMEM;
    *deadline = green__deadline(timeout_ns);
    return 0;
}

/* May switch. */
int green_chan_send(green_chan_t *ch, void *msg, int64_t timeout_ns)
{
    int64_t deadline;
    int code = chan_prologue(ch, timeout_ns, &deadline);
    while (code == 0 && (code = send_now(ch, msg)) == EAGAIN) {
        struct chan_wait w = { .msg = msg, .done = false };
        code = chan_park(ch, &ch->senders, &w, deadline);
        if (w.done)
            return 0;
    }
    return green__result(code);
}

/* May switch. */
int green_chan_recv(green_chan_t *ch, void **msg, int64_t timeout_ns)
{
    int64_t deadline;
    void *got = NULL;
    int code = chan_prologue(ch, timeout_ns, &deadline);
    while (code == 0 && (code = recv_now(ch, &got)) == EAGAIN) {
        struct chan_wait w = { .msg = NULL, .done = false };
        code = chan_park(ch, &ch->receivers, &w, deadline);
        if (w.done) {
            got = w.msg;
            code = 0;
            break;
        }
    }
    if (code == 0 && msg)
        *msg = got;
    return green__result(code);
}

int green_chan_trysend(green_chan_t *ch, void *msg)
{
    return green__result(ch ? send_now(ch, msg) : EINVAL);
}

int green_chan_tryrecv(green_chan_t *ch, void **msg)
{
    void *got = NULL;
    int code = ch ? recv_now(ch, &got) : EINVAL;
    if (code == 0 && msg)
        *msg = got;
    return green__result(code);
}

/* Never switches: parked threads are made runnable with EPIPE. */
void green_chan_close(green_chan_t *ch)
{
    if (!ch || ch->closed)
        return;
    ch->closed = true;
    green__waitq_wake_all(&ch->senders, EPIPE);
    green__waitq_wake_all(&ch->receivers, EPIPE);
}

void green_chan_destroy(green_chan_t *ch)
{
    if (!ch)
        return;
    green_chan_close(ch);
    free(ch->ring);
    free(ch);
}

size_t green_chan_len(const green_chan_t *ch)
{
    return ch ? ch->len : 0;
}
