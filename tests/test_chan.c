/*
 * test_chan.c - channels: bounded and unbounded buffering, FIFO order,
 * parking senders and receivers, timeouts, kills while waiting, timeout
 * scopes, try variants, close and destroy semantics, and a 100,000-round
 * ping-pong. The test body is the main green thread.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include "green.h"

#define RESULT(r) ((void *)(intptr_t)((r) == -1 ? errno : 0))
#define MSG(i)    ((void *)(intptr_t)(i))

static int join_code(green_t t)
{
    void *r = (void *)(intptr_t)-12345;
    cr_assert_eq(green_join(t, &r), 0);
    return (int)(intptr_t)r;
}

static green_chan_t *ch;
static intptr_t got[64];
static int ngot;

static void *sender(void *arg)
{
    return RESULT(green_chan_send(ch, arg, GREEN_FOREVER));
}

static void *receiver(void *arg)
{
    void *m = NULL;
    int r = green_chan_recv(ch, &m, (int64_t)(intptr_t)arg);
    if (r == 0)
        got[ngot++] = (intptr_t)m;
    return RESULT(r);
}

Test(chan, create_with_an_absurd_capacity_fails_with_einval)
{
    errno = 0;
    cr_expect_null(green_chan_create(SIZE_MAX));
    cr_expect_eq(errno, EINVAL);
    green_chan_t *c = green_chan_create(1u << 30);   /* no upfront GiB */
    cr_assert(c);
    cr_expect_eq(green_chan_send(c, MSG(1), 0), 0);
    green_chan_destroy(c);
}

Test(chan, unbounded_channel_never_parks_and_keeps_fifo_order)
{
    ch = green_chan_create(0);
    cr_assert(ch);
    for (intptr_t i = 0; i < 100000; i++)
        cr_assert_eq(green_chan_send(ch, MSG(i), 0), 0);   /* timeout 0 */
    cr_expect_eq(green_chan_len(ch), 100000);
    for (intptr_t i = 0; i < 100000; i++) {
        void *m;
        cr_assert_eq(green_chan_recv(ch, &m, 0), 0);
        cr_assert_eq((intptr_t)m, i);
    }
    cr_expect_eq(green_chan_len(ch), 0);
    green_chan_destroy(ch);
}

Test(chan, bounded_send_parks_when_full_until_a_receive_makes_room)
{
    ch = green_chan_create(2);
    cr_assert(ch);
    green_t s[4];
    for (int i = 0; i < 4; i++)
        s[i] = green_spawn(sender, MSG(i + 1), NULL);
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(green_chan_len(ch), 2);
    errno = 0;
    cr_expect_eq(green_chan_trysend(ch, MSG(99)), -1);
    cr_expect_eq(errno, EAGAIN);
    for (int i = 1; i <= 4; i++) {
        void *m;
        cr_assert_eq(green_chan_recv(ch, &m, GREEN_FOREVER), 0);
        cr_expect_eq((intptr_t)m, i);   /* parked senders keep their order */
    }
    for (int i = 0; i < 4; i++)
        cr_expect_eq(join_code(s[i]), 0);
    cr_expect_eq(green_chan_len(ch), 0);
    green_chan_destroy(ch);
}

Test(chan, send_hands_a_message_to_parked_receivers_in_order_including_null)
{
    ch = green_chan_create(1);
    green_t r[3];
    for (int i = 0; i < 3; i++)
        r[i] = green_spawn(receiver, MSG(GREEN_FOREVER), NULL);
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(green_chan_send(ch, MSG(7), 0), 0);
    cr_expect_eq(green_chan_send(ch, NULL, 0), 0);
    cr_expect_eq(green_chan_trysend(ch, MSG(9)), 0);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(join_code(r[i]), 0);
    cr_assert_eq(ngot, 3);
    cr_expect_eq(got[0], 7);
    cr_expect_eq(got[1], 0);
    cr_expect_eq(got[2], 9);
    green_chan_destroy(ch);
}

Test(chan, recv_on_an_empty_channel_times_out_with_etimedout)
{
    ch = green_chan_create(0);
    void *m = MSG(5);
    int64_t t0 = green_now();
    errno = 0;
    cr_expect_eq(green_chan_recv(ch, &m, GREEN_MSEC(10)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_geq(green_now() - t0, GREEN_MSEC(10));
    cr_expect_eq((intptr_t)m, 5);   /* untouched */
    errno = 0;
    cr_expect_eq(green_chan_tryrecv(ch, &m), -1);
    cr_expect_eq(errno, EAGAIN);
    green_chan_destroy(ch);
}

Test(chan, send_on_a_full_channel_times_out_and_the_message_is_not_queued)
{
    ch = green_chan_create(1);
    cr_assert_eq(green_chan_send(ch, MSG(1), GREEN_FOREVER), 0);
    errno = 0;
    cr_expect_eq(green_chan_send(ch, MSG(2), GREEN_MSEC(5)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_eq(green_chan_len(ch), 1);
    void *m;
    cr_expect_eq(green_chan_tryrecv(ch, &m), 0);
    cr_expect_eq((intptr_t)m, 1);
    cr_expect_eq(green_chan_tryrecv(ch, &m), -1);
    green_chan_destroy(ch);
}

Test(chan, killed_receiver_fails_with_ecanceled_and_the_next_one_gets_the_message)
{
    ch = green_chan_create(4);
    green_t a = green_spawn(receiver, MSG(GREEN_FOREVER), NULL);
    green_t b = green_spawn(receiver, MSG(GREEN_FOREVER), NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_kill(a), 0);
    cr_expect_eq(green_chan_send(ch, MSG(42), 0), 0);
    cr_expect_eq(join_code(a), ECANCELED);
    cr_expect_eq(join_code(b), 0);
    cr_assert_eq(ngot, 1);
    cr_expect_eq(got[0], 42);
    cr_expect_eq(green_chan_len(ch), 0);
    green_chan_destroy(ch);
}

Test(chan, killed_sender_fails_with_ecanceled_and_its_message_is_not_delivered)
{
    ch = green_chan_create(1);
    cr_assert_eq(green_chan_send(ch, MSG(1), 0), 0);
    green_t a = green_spawn(sender, MSG(2), NULL);
    green_t b = green_spawn(sender, MSG(3), NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_kill(a), 0);
    cr_expect_eq(join_code(a), ECANCELED);
    void *m;
    cr_expect_eq(green_chan_recv(ch, &m, 0), 0);
    cr_expect_eq((intptr_t)m, 1);
    cr_expect_eq(green_chan_recv(ch, &m, GREEN_FOREVER), 0);
    cr_expect_eq((intptr_t)m, 3);
    cr_expect_eq(join_code(b), 0);
    cr_expect_eq(green_chan_len(ch), 0);
    green_chan_destroy(ch);
}

Test(chan, recv_in_a_timeout_scope_fails_with_etimedout_and_marks_the_scope)
{
    ch = green_chan_create(0);
    green_timeout_t scope;
    cr_assert_eq(green_timeout_begin(&scope, GREEN_MSEC(5)), 0);
    void *m;
    errno = 0;
    int r = green_chan_recv(ch, &m, GREEN_FOREVER);
    int e = errno;
    cr_expect(green_timeout_end(&scope));
    cr_expect_eq(r, -1);
    cr_expect_eq(e, ETIMEDOUT);
    green_chan_destroy(ch);
}

Test(chan, close_fails_sends_with_epipe_and_recv_drains_then_fails_with_epipe)
{
    ch = green_chan_create(0);
    cr_assert_eq(green_chan_send(ch, MSG(1), 0), 0);
    cr_assert_eq(green_chan_send(ch, MSG(2), 0), 0);
    green_chan_close(ch);
    green_chan_close(ch);   /* harmless */
    errno = 0;
    cr_expect_eq(green_chan_send(ch, MSG(3), GREEN_FOREVER), -1);
    cr_expect_eq(errno, EPIPE);
    errno = 0;
    cr_expect_eq(green_chan_trysend(ch, MSG(3)), -1);
    cr_expect_eq(errno, EPIPE);
    void *m;
    cr_expect_eq(green_chan_recv(ch, &m, GREEN_FOREVER), 0);
    cr_expect_eq((intptr_t)m, 1);
    cr_expect_eq(green_chan_tryrecv(ch, &m), 0);
    cr_expect_eq((intptr_t)m, 2);
    errno = 0;
    cr_expect_eq(green_chan_recv(ch, &m, GREEN_FOREVER), -1);
    cr_expect_eq(errno, EPIPE);
    errno = 0;
    cr_expect_eq(green_chan_tryrecv(ch, &m), -1);
    cr_expect_eq(errno, EPIPE);
    green_chan_destroy(ch);
}

Test(chan, close_wakes_parked_receivers_and_senders_with_epipe)
{
    ch = green_chan_create(0);
    green_t r = green_spawn(receiver, MSG(GREEN_FOREVER), NULL);
    cr_assert_eq(green_yield(), 0);
    green_chan_close(ch);
    cr_expect_eq(join_code(r), EPIPE);
    green_chan_destroy(ch);

    ch = green_chan_create(1);
    cr_assert_eq(green_chan_send(ch, MSG(1), 0), 0);
    green_t s = green_spawn(sender, MSG(2), NULL);
    cr_assert_eq(green_yield(), 0);
    green_chan_close(ch);
    cr_expect_eq(join_code(s), EPIPE);
    cr_expect_eq(green_chan_len(ch), 1);   /* what was queued stays */
    green_chan_destroy(ch);
}

Test(chan, destroy_wakes_every_waiter_with_epipe)
{
    ch = green_chan_create(1);
    green_t r[3];
    for (int i = 0; i < 3; i++)
        r[i] = green_spawn(receiver, MSG(GREEN_FOREVER), NULL);
    cr_assert_eq(green_yield(), 0);
    green_chan_destroy(ch);
    ch = NULL;
    for (int i = 0; i < 3; i++)
        cr_expect_eq(join_code(r[i]), EPIPE);
    cr_expect_eq(ngot, 0);
}

Test(chan, bad_arguments_fail_with_einval)
{
    errno = 0;
    cr_expect_eq(green_chan_send(NULL, NULL, 0), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_chan_tryrecv(NULL, NULL), -1);
    cr_expect_eq(errno, EINVAL);
    ch = green_chan_create(0);
    errno = 0;
    cr_expect_eq(green_chan_recv(ch, NULL, -5), -1);
    cr_expect_eq(errno, EINVAL);
    green_chan_destroy(ch);
}

/* -------------------------------------------------------------- ping-pong */

#define ROUNDS 100000
static green_chan_t *ping, *pong;

static void *ponger(void *arg)
{
    (void)arg;
    for (;;) {
        void *m;
        if (green_chan_recv(ping, &m, GREEN_FOREVER) != 0)
            return RESULT(-1);
        if ((intptr_t)m < 0)
            return NULL;
        if (green_chan_send(pong, MSG((intptr_t)m + 1), GREEN_FOREVER) != 0)
            return RESULT(-1);
    }
}

Test(chan, ping_pong_between_two_threads_100000_times_completes_correctly)
{
    ping = green_chan_create(1);
    pong = green_chan_create(1);
    green_t t = green_spawn(ponger, NULL, NULL);
    int64_t t0 = green_now();
    intptr_t v = 0;
    for (int i = 0; i < ROUNDS; i++) {
        void *m;
        cr_assert_eq(green_chan_send(ping, MSG(v), GREEN_FOREVER), 0);
        cr_assert_eq(green_chan_recv(pong, &m, GREEN_FOREVER), 0);
        cr_assert_eq((intptr_t)m, v + 1);
        v = (intptr_t)m;
    }
    cr_assert_eq(green_chan_send(ping, MSG(-1), GREEN_FOREVER), 0);
    cr_expect_eq(join_code(t), 0);
    cr_expect_eq(v, ROUNDS);
    cr_expect_lt(green_now() - t0, GREEN_SEC(10));
    green_chan_destroy(ping);
    green_chan_destroy(pong);
}

/* ----------------------------------------------- many producers/consumers */

static intptr_t consumed_sum;
static int consumed;

static void *producer(void *arg)
{
    intptr_t base = (intptr_t)arg;
    for (intptr_t i = 1; i <= 1000; i++)
        if (green_chan_send(ch, MSG(base + i), GREEN_FOREVER) != 0)
            return RESULT(-1);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    void *m;
    int r;
    while ((r = green_chan_recv(ch, &m, GREEN_FOREVER)) == 0) {
        consumed_sum += (intptr_t)m;
        consumed++;
    }
    return errno == EPIPE ? NULL : RESULT(r);
}

Test(chan, many_producers_and_consumers_lose_and_duplicate_nothing)
{
    ch = green_chan_create(3);
    green_t p[5], c[4];
    for (int i = 0; i < 4; i++)
        c[i] = green_spawn(consumer, NULL, NULL);
    for (int i = 0; i < 5; i++)
        p[i] = green_spawn(producer, MSG(i * 10000), NULL);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(join_code(p[i]), 0);
    green_chan_close(ch);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(join_code(c[i]), 0);
    intptr_t want = 0;
    for (int i = 0; i < 5; i++)
        want += i * 10000 * 1000 + 1000 * 1001 / 2;
    cr_expect_eq(consumed, 5000);
    cr_expect_eq(consumed_sum, want);
    green_chan_destroy(ch);
}

/* ------------------------------------------------------- randomised mix */

#define MIX_THREADS 30
static green_t mix_threads[MIX_THREADS];
static long sent_sum, sent_n, recv_sum, recv_n;
static int mix_finished;

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void *mix_worker(void *arg)
{
    unsigned s = (unsigned)(intptr_t)arg;
    for (int i = 0; i < 2000; i++) {
        unsigned r = next_rand(&s);
        int64_t timeout = r % 3 == 0 ? GREEN_FOREVER : GREEN_USEC(20 * (r % 3));
        if (r & 0x100) {
            long v = (long)next_rand(&s) + 1;
            int ok = r & 0x200 ? green_chan_trysend(ch, MSG(v))
                               : green_chan_send(ch, MSG(v), timeout);
            if (ok == 0) {
                sent_sum += v;
                sent_n++;
            }
        } else {
            void *m;
            int ok = r & 0x200 ? green_chan_tryrecv(ch, &m)
                               : green_chan_recv(ch, &m, timeout);
            if (ok == 0) {
                recv_sum += (intptr_t)m;
                recv_n++;
            }
        }
    }
    mix_finished++;
    return NULL;
}

static void *mix_killer(void *arg)
{
    unsigned s = (unsigned)(intptr_t)arg;
    while (mix_finished < MIX_THREADS) {
        green_kill(mix_threads[next_rand(&s) % MIX_THREADS]);
        if (next_rand(&s) % 2)
            green_yield();
        else
            green_sleep(GREEN_USEC(10));
    }
    return NULL;
}

Test(chan, random_mix_of_timeouts_and_kills_loses_and_duplicates_nothing)
{
    ch = green_chan_create(4);
    for (int i = 0; i < MIX_THREADS; i++)
        mix_threads[i] = green_spawn(mix_worker, (void *)(intptr_t)(i + 1), NULL);
    green_t k = green_spawn(mix_killer, (void *)5, NULL);
    cr_assert_eq(green_join(k, NULL), 0);
    for (int i = 0; i < MIX_THREADS; i++)
        cr_assert_eq(green_join(mix_threads[i], NULL), 0);
    void *m;
    while (green_chan_tryrecv(ch, &m) == 0) {
        recv_sum += (intptr_t)m;
        recv_n++;
    }
    cr_log_info("sent=%ld received=%ld", sent_n, recv_n);
    cr_expect_gt(sent_n, 1000);
    cr_expect_eq(recv_n, sent_n);
    cr_expect_eq(recv_sum, sent_sum);
    green_chan_destroy(ch);
}
