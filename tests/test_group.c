/*
 * test_group.c - groups and pools: joinall, the pool's concurrency bound,
 * kill, destroy, members killed before they ran, timeouts and kills while
 * waiting for a slot or a join. The test body is the main green thread.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "green.h"

#define RESULT(r) ((void *)(intptr_t)((r) == -1 ? errno : 0))

static int join_code(green_t t)
{
    void *r = (void *)(intptr_t)-12345;
    cr_assert_eq(green_join(t, &r), 0);
    return (int)(intptr_t)r;
}

static int started, finished, canceled, running, max_running;

/* Sleep arg milliseconds (forever if negative), counting. */
static void *worker(void *arg)
{
    intptr_t ms = (intptr_t)arg;
    started++;
    if (++running > max_running)
        max_running = running;
    int r = green_sleep(ms < 0 ? GREEN_SEC(1000) : GREEN_MSEC(ms));
    running--;
    if (r == -1 && errno == ECANCELED)
        canceled++;
    finished++;
    return NULL;
}

/* Count like worker, but end only once every member has started (the
 * gate opens at 50 starts): "all at once" then does not depend on how
 * fast a loaded machine starts 50 threads compared with a sleep. */
static green_event_t gate;

static void *gated_worker(void *arg)
{
    (void)arg;
    started++;
    if (++running > max_running)
        max_running = running;
    if (started == 50)
        green_event_set(&gate);
    int r = green_event_wait(&gate, GREEN_SEC(60));
    running--;
    if (r == 0)
        finished++;
    return NULL;
}

Test(group, join_waits_for_every_member)
{
    green_group_t *g = green_group_create(0);
    cr_assert(g);
    green_event_init(&gate);
    for (int i = 0; i < 50; i++)
        cr_assert(green_group_spawn(g, gated_worker, NULL, NULL));
    cr_expect_eq(green_group_size(g), 50);
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    cr_expect_eq(finished, 50);
    cr_expect_eq(green_group_size(g), 0);
    cr_expect_eq(max_running, 50);   /* unbounded: all at once */
    green_group_destroy(g);
}

Test(group, pool_never_runs_more_than_its_bound_at_once)
{
    green_group_t *g = green_group_create(3);
    cr_assert(g);
    for (int i = 0; i < 20; i++) {
        cr_assert(green_group_spawn(g, worker, (void *)1, NULL));
        cr_assert_leq(green_group_size(g), 3);
    }
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    cr_expect_eq(finished, 20);
    cr_expect_eq(max_running, 3);
    green_group_destroy(g);
}

Test(group, spawn_into_a_full_pool_parks_until_a_slot_frees)
{
    green_group_t *g = green_group_create(1);
    cr_assert(green_group_spawn(g, worker, (void *)20, NULL));
    int64_t t0 = green_now();
    cr_assert(green_group_spawn(g, worker, (void *)0, NULL));
    cr_expect_geq(green_now() - t0, GREEN_MSEC(20));
    cr_expect_eq(finished, 1);
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    cr_expect_eq(finished, 2);
    green_group_destroy(g);
}

Test(group, spawn_into_a_full_pool_in_a_timeout_scope_fails_with_etimedout)
{
    green_group_t *g = green_group_create(1);
    cr_assert(green_group_spawn(g, worker, (void *)-1, NULL));
    green_timeout_t scope;
    cr_assert_eq(green_timeout_begin(&scope, GREEN_MSEC(5)), 0);
    errno = 0;
    green_t t = green_group_spawn(g, worker, (void *)0, NULL);
    int e = errno;
    cr_expect(green_timeout_end(&scope));
    cr_expect_null(t);
    cr_expect_eq(e, ETIMEDOUT);
    cr_expect_eq(started, 1);
    cr_expect_eq(green_group_size(g), 1);
    green_group_kill(g);
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    cr_expect_eq(canceled, 1);
    /* The slot came back: a spawn does not park now. */
    cr_assert(green_group_spawn(g, worker, (void *)0, NULL));
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    green_group_destroy(g);
}

static green_group_t *shared;

static void *spawn_into_shared(void *arg)
{
    (void)arg;
    green_t t = green_group_spawn(shared, worker, (void *)0, NULL);
    return t ? NULL : RESULT(-1);
}

Test(group, spawner_killed_while_waiting_for_a_slot_fails_with_ecanceled)
{
    shared = green_group_create(1);
    cr_assert(green_group_spawn(shared, worker, (void *)-1, NULL));
    green_t a = green_spawn(spawn_into_shared, NULL, NULL);
    green_t b = green_spawn(spawn_into_shared, NULL, NULL);
    cr_assert_eq(green_yield(), 0);
    cr_assert_eq(green_kill(a), 0);
    cr_expect_eq(join_code(a), ECANCELED);
    green_group_kill(shared);   /* frees the slot: b gets it */
    cr_expect_eq(join_code(b), 0);
    cr_expect_eq(green_group_join(shared, GREEN_FOREVER), 0);
    cr_expect_eq(finished, 2);
    cr_expect_eq(canceled, 1);
    green_group_destroy(shared);
}

Test(group, join_with_a_timeout_fails_with_etimedout_and_members_keep_running)
{
    green_group_t *g = green_group_create(0);
    cr_assert(green_group_spawn(g, worker, (void *)30, NULL));
    errno = 0;
    cr_expect_eq(green_group_join(g, GREEN_MSEC(5)), -1);
    cr_expect_eq(errno, ETIMEDOUT);
    cr_expect_eq(green_group_size(g), 1);
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    cr_expect_eq(finished, 1);
    cr_expect_eq(canceled, 0);
    green_group_destroy(g);
}

Test(group, kill_cancels_every_member_and_join_then_returns)
{
    green_group_t *g = green_group_create(0);
    for (int i = 0; i < 10; i++)
        cr_assert(green_group_spawn(g, worker, (void *)-1, NULL));
    cr_assert_eq(green_yield(), 0);
    cr_expect_eq(started, 10);
    green_group_kill(g);
    cr_expect_eq(green_group_join(g, GREEN_SEC(10)), 0);
    cr_expect_eq(canceled, 10);
    cr_expect_eq(green_group_size(g), 0);
    green_group_destroy(g);
}

Test(group, member_killed_before_it_ran_never_runs_and_is_still_accounted)
{
    green_group_t *g = green_group_create(2);
    green_t a = green_group_spawn(g, worker, (void *)0, NULL);
    green_t b = green_group_spawn(g, worker, (void *)0, NULL);
    cr_assert(a && b);
    cr_assert_eq(green_kill(a), 0);
    cr_assert_eq(green_kill(b), 0);
    cr_expect_eq(green_group_join(g, GREEN_SEC(10)), 0);
    cr_expect_eq(started, 0);
    cr_expect_eq(green_group_size(g), 0);
    /* Both slots came back. */
    cr_assert(green_group_spawn(g, worker, (void *)0, NULL));
    cr_assert(green_group_spawn(g, worker, (void *)0, NULL));
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    cr_expect_eq(started, 2);
    green_group_destroy(g);
}

Test(group, destroy_kills_and_waits_for_what_is_still_running)
{
    green_group_t *g = green_group_create(0);
    for (int i = 0; i < 5; i++)
        cr_assert(green_group_spawn(g, worker, (void *)-1, NULL));
    cr_assert_eq(green_yield(), 0);
    green_group_destroy(g);
    cr_expect_eq(finished, 5);
    cr_expect_eq(canceled, 5);
}

Test(group, join_in_a_timeout_scope_fails_with_etimedout)
{
    green_group_t *g = green_group_create(0);
    cr_assert(green_group_spawn(g, worker, (void *)-1, NULL));
    green_timeout_t scope;
    cr_assert_eq(green_timeout_begin(&scope, GREEN_MSEC(5)), 0);
    errno = 0;
    int r = green_group_join(g, GREEN_FOREVER);
    int e = errno;
    cr_expect(green_timeout_end(&scope));
    cr_expect_eq(r, -1);
    cr_expect_eq(e, ETIMEDOUT);
    green_group_destroy(g);   /* kills and joins the sleeper */
    cr_expect_eq(canceled, 1);
}

static void *name_check(void *arg)
{
    (void)arg;
    return strcmp(green_name(green_self()), "member") == 0 ? NULL : (void *)1;
}

static int name_ok;
static void *record_name(void *arg)
{
    name_ok = name_check(arg) == NULL;
    return NULL;
}

Test(group, spawn_honours_attributes_and_rejects_bad_arguments)
{
    green_group_t *g = green_group_create(0);
    green_attr_t a = { .name = "member" };
    green_t t = green_group_spawn(g, record_name, NULL, &a);
    cr_assert(t);
    cr_expect_str_eq(green_name(t), "member");
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    cr_expect(name_ok);
    errno = 0;
    cr_expect_null(green_group_spawn(g, NULL, NULL, NULL));
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_null(green_group_spawn(NULL, worker, NULL, NULL));
    cr_expect_eq(errno, EINVAL);
    green_attr_t tiny = { .stack_size = 1024 };
    errno = 0;
    cr_expect_null(green_group_spawn(g, worker, NULL, &tiny));
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(green_group_size(g), 0);
    green_group_destroy(g);
}

static void *quick(void *arg)
{
    (void)arg;
    finished++;
    return NULL;
}

Test(group, ten_thousand_members_through_a_pool_of_100_all_finish)
{
    green_group_t *g = green_group_create(100);
    for (int i = 0; i < 10000; i++)
        cr_assert(green_group_spawn(g, quick, NULL, NULL));
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    cr_expect_eq(finished, 10000);
    green_group_destroy(g);
}

static int switch_value_kept;

static void *switched_spawner(void *arg)
{
    green_group_t *g = arg;
    /* Our start value survives the group's start-up switches. */
    if (green_group_spawn(g, quick, NULL, NULL) &&
        green_switch_value() == (void *)0x55)
        switch_value_kept = 1;
    return NULL;
}

Test(group, spawning_keeps_the_spawners_switch_value)
{
    green_group_t *g = green_group_create(0);
    green_t x = green_spawn(switched_spawner, g, NULL);
    cr_assert(x);
    green_switch(x, (void *)0x55, NULL);   /* runs x until it ends */
    cr_expect_eq(join_code(x), 0);
    cr_expect_eq(switch_value_kept, 1);
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    cr_expect_eq(finished, 1);
    green_group_destroy(g);
}

/* ------------------------------------------------------- randomised mix */

static green_group_t *mix_pool;
static int mix_spawned, mix_spawners_done, mix_over_bound;
static green_t mix_spawners[4];

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void *mix_member(void *arg)
{
    if (++running > 5)
        mix_over_bound++;
    green_sleep(GREEN_USEC((intptr_t)arg));
    running--;
    finished++;
    return NULL;
}

static void *mix_spawner(void *arg)
{
    unsigned s = (unsigned)(intptr_t)arg;
    for (int i = 0; i < 1000; i++) {
        if (green_group_spawn(mix_pool, mix_member,
                              (void *)(intptr_t)(next_rand(&s) % 50), NULL))
            mix_spawned++;
        if (next_rand(&s) % 100 == 0)
            green_group_kill(mix_pool);
    }
    mix_spawners_done++;
    return NULL;
}

static void *mix_killer(void *arg)
{
    unsigned s = (unsigned)(intptr_t)arg;
    while (mix_spawners_done < 4) {
        green_kill(mix_spawners[next_rand(&s) % 4]);
        green_sleep(GREEN_USEC(20));
    }
    return NULL;
}

Test(group, random_spawns_kills_and_group_kills_keep_the_pool_bound_and_count)
{
    mix_pool = green_group_create(5);
    for (int i = 0; i < 4; i++)
        mix_spawners[i] = green_spawn(mix_spawner, (void *)(intptr_t)(i + 1), NULL);
    green_t k = green_spawn(mix_killer, (void *)9, NULL);
    cr_assert_eq(green_join(k, NULL), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(green_join(mix_spawners[i], NULL), 0);
    cr_expect_eq(green_group_join(mix_pool, GREEN_SEC(30)), 0);
    cr_log_info("spawned=%d finished=%d", mix_spawned, finished);
    cr_expect_gt(mix_spawned, 100);
    cr_expect_eq(mix_over_bound, 0);
    cr_expect_eq(green_group_size(mix_pool), 0);
    /* Killed-before-run members never ran; the rest all finished. */
    cr_expect_leq(finished, mix_spawned);
    cr_expect_eq(running, 0);
    green_group_destroy(mix_pool);
}

#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_int on_other_os_thread;

static void *note_os_thread(void *arg)
{
    green_yield();
    if ((pid_t)syscall(SYS_gettid) != (pid_t)(intptr_t)arg)
        atomic_fetch_add(&on_other_os_thread, 1);
    return NULL;
}

/* A group's queues belong to one hub: with green_set_hubs(2) its members
 * still run on the spawner's hub, while a plain green_spawn goes to the
 * other hub. */
Test(group, members_stay_on_the_spawners_hub_with_two_hubs)
{
    cr_assert_eq(green_set_hubs(2), 0);
    void *me = (void *)(intptr_t)syscall(SYS_gettid);
    green_group_t *g = green_group_create(0);
    cr_assert(g);
    for (int i = 0; i < 20; i++)
        cr_assert(green_group_spawn(g, note_os_thread, me, NULL));
    cr_expect_eq(green_group_join(g, GREEN_FOREVER), 0);
    green_group_destroy(g);
    cr_expect_eq(atomic_load(&on_other_os_thread), 0, "%d members ran on another hub",
                 atomic_load(&on_other_os_thread));
    /* The check can fail: plain spawns do go to the other hub. */
    green_t a = green_spawn(note_os_thread, me, NULL), b = green_spawn(note_os_thread, me, NULL);
    cr_assert(a && b);
    cr_assert_eq(green_join(a, NULL), 0);
    cr_assert_eq(green_join(b, NULL), 0);
    cr_expect_eq(atomic_load(&on_other_os_thread), 1);
}
