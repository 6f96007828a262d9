/*
 * test_switch.c - the context switch: callee-saved registers and the
 * floating-point control state survive a switch and belong to each green
 * thread; green_switch's greenlet semantics.
 *
 * The register test cannot be written in C (the compiler owns the
 * callee-saved registers), so a tiny assembly helper, probe_regs, loads
 * known values into rbx rbp r12-r15, calls a C function that switches away
 * (while another green thread runs with different values in the same
 * registers), and then stores what the registers hold.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fenv.h>
#include <stdint.h>
#include <string.h>
#include "green.h"
#ifdef GREEN_VALGRIND
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/* ------------------------------------------------ callee-saved registers */

#if defined(__x86_64__)
/* void probe_regs(const uint64_t in[6], uint64_t out[6], void (*fn)(void))
 * Loads in[] into rbx rbp r12 r13 r14 r15, calls fn, stores the six
 * registers into out[], restores the caller's registers. */
__asm__(
    ".text\n"
    ".p2align 4\n"
    "probe_regs:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    pushq %rsi\n"            /* out; 7 pushes keep rsp 16-aligned */
    "    movq 0(%rdi), %rbx\n"
    "    movq 8(%rdi), %rbp\n"
    "    movq 16(%rdi), %r12\n"
    "    movq 24(%rdi), %r13\n"
    "    movq 32(%rdi), %r14\n"
    "    movq 40(%rdi), %r15\n"
    "    callq *%rdx\n"
    "    popq %rax\n"
    "    movq %rbx, 0(%rax)\n"
    "    movq %rbp, 8(%rax)\n"
    "    movq %r12, 16(%rax)\n"
    "    movq %r13, 24(%rax)\n"
    "    movq %r14, 32(%rax)\n"
    "    movq %r15, 40(%rax)\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n");
void probe_regs(const uint64_t in[6], uint64_t out[6], void (*fn)(void));

static void yield_a_few(void)
{
    for (int i = 0; i < 3; i++)
        green_yield();
}

struct regjob {
    uint64_t in[6], out[6];
};

static void *reg_thread(void *arg)
{
    struct regjob *j = arg;
    probe_regs(j->in, j->out, yield_a_few);
    return NULL;
}

Test(switch, callee_saved_registers_survive_switches_to_a_thread_that_clobbers_them)
{
    struct regjob a, b, m;
    for (int i = 0; i < 6; i++) {
        a.in[i] = 0xA0A0A0A000000000ull + (uint64_t)i;
        b.in[i] = 0xB0B0B0B000000000ull + (uint64_t)i * 7;
        m.in[i] = 0xC0C0C0C000000000ull + (uint64_t)i * 13;
    }
    memset(a.out, 0, sizeof a.out);
    memset(b.out, 0, sizeof b.out);
    memset(m.out, 0, sizeof m.out);
    green_t ta = green_spawn(reg_thread, &a, NULL);
    green_t tb = green_spawn(reg_thread, &b, NULL);
    cr_assert(ta && tb);
    probe_regs(m.in, m.out, yield_a_few);   /* main takes part too */
    cr_assert_eq(green_join(ta, NULL), 0);
    cr_assert_eq(green_join(tb, NULL), 0);
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(a.out[i], a.in[i], "thread A register %d: %#lx", i, (unsigned long)a.out[i]);
        cr_expect_eq(b.out[i], b.in[i], "thread B register %d: %#lx", i, (unsigned long)b.out[i]);
        cr_expect_eq(m.out[i], m.in[i], "main register %d: %#lx", i, (unsigned long)m.out[i]);
    }
}

static unsigned read_mxcsr(void)
{
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}

static unsigned short read_x87cw(void)
{
    unsigned short v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}

static void write_x87cw(unsigned short v)
{
    __asm__ volatile("fldcw %0" : : "m"(v));
}

static void write_mxcsr(unsigned v)
{
    __asm__ volatile("ldmxcsr %0" : : "m"(v));
}

/* fesetround/fegetround without libm (the tests link no -lm): on x86-64
 * the FE_* values are the x87 rounding-control bits (10-11); MXCSR keeps
 * the same two bits at 13-14. Both units are set, as glibc does. */
static void set_round(int mode)
{
    write_x87cw((unsigned short)((read_x87cw() & ~0x0c00u) | (unsigned)mode));
    write_mxcsr((read_mxcsr() & ~0x6000u) | ((unsigned)mode << 3));
}

static int get_round(void)
{
    return read_x87cw() & 0x0c00;
}

struct fpjob {
    int round;                 /* rounding mode to set, or -1 to keep */
    unsigned short x87_pc;     /* x87 precision-control bits to set */
    int seen_round[4];
    unsigned seen_mxcsr_rc[4];
    unsigned short seen_x87cw[4];
};

static void *fp_thread(void *arg)
{
    struct fpjob *j = arg;
    if (j->round >= 0) {
        set_round(j->round);
        write_x87cw((unsigned short)((read_x87cw() & ~0x0300u) | j->x87_pc));
    }
    for (int i = 0; i < 4; i++) {
        green_yield();
        j->seen_round[i] = get_round();
        j->seen_mxcsr_rc[i] = (read_mxcsr() >> 13) & 3;
        j->seen_x87cw[i] = read_x87cw();
    }
    return NULL;
}

Test(switch, rounding_mode_and_x87_control_word_are_per_thread)
{
    cr_assert_eq(get_round(), FE_TONEAREST);
    unsigned short main_cw = read_x87cw();
    struct fpjob a = { .round = FE_DOWNWARD, .x87_pc = 0x0000 };  /* single precision */
    struct fpjob b = { .round = -1 };
    green_t ta = green_spawn(fp_thread, &a, NULL);
    green_t tb = green_spawn(fp_thread, &b, NULL);
    cr_assert(ta && tb);
    for (int i = 0; i < 6; i++) {
        green_yield();
        cr_expect_eq(get_round(), FE_TONEAREST, "main lost its rounding mode");
        cr_expect_eq(read_x87cw(), main_cw, "main lost its x87 control word");
    }
    cr_assert_eq(green_join(ta, NULL), 0);
    cr_assert_eq(green_join(tb, NULL), 0);
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(a.seen_round[i], FE_DOWNWARD);
        cr_expect_eq(a.seen_mxcsr_rc[i], 1u, "MXCSR RC of A is %u", a.seen_mxcsr_rc[i]);
        cr_expect_eq((a.seen_x87cw[i] >> 10) & 3, 1, "x87 RC of A");
        if (!RUNNING_ON_VALGRIND)   /* valgrind ignores x87 precision control */
            cr_expect_eq(a.seen_x87cw[i] & 0x0300, 0x0000, "x87 PC of A: %#x", a.seen_x87cw[i]);
        cr_expect_eq(b.seen_round[i], FE_TONEAREST);
        cr_expect_eq(b.seen_mxcsr_rc[i], 0u);
        cr_expect_eq(b.seen_x87cw[i], main_cw);
    }
}

static void *report_round(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)get_round();
}

Test(switch, a_new_thread_starts_with_its_spawners_rounding_mode)
{
    set_round(FE_UPWARD);
    green_t t = green_spawn(report_round, NULL, NULL);
    set_round(FE_TONEAREST);
    void *r;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((int)(intptr_t)r, FE_UPWARD);
    cr_expect_eq(get_round(), FE_TONEAREST);
}
#endif /* __x86_64__ */

/* ------------------------------------------------------------ green_switch */

static green_t main_t;

static void *ping(void *arg)
{
    (void)arg;
    intptr_t v = (intptr_t)green_switch_value();      /* 10 from main */
    void *got = NULL;
    if (green_switch(main_t, (void *)(v + 1), &got) != 0)   /* main gets 11 */
        return (void *)(intptr_t)-100;
    intptr_t w = (intptr_t)got;                        /* 12 from main */
    if (green_switch(main_t, (void *)(w + 1), &got) != 0)   /* main gets 13 */
        return (void *)(intptr_t)-101;
    return (void *)((intptr_t)got * 2);                /* 14 * 2 */
}

Test(switch, values_pass_both_ways_and_a_new_thread_reads_the_first_one)
{
    main_t = green_self();
    green_t t = green_spawn(ping, NULL, NULL);
    cr_assert(t);
    void *got = NULL;
    cr_assert_eq(green_switch(t, (void *)10, &got), 0, "errno %d", errno);
    cr_expect_eq((intptr_t)got, 11);
    cr_assert_eq(green_switch(t, (void *)12, &got), 0, "errno %d", errno);
    cr_expect_eq((intptr_t)got, 13);
    /* ping returns after the last value, while main waits in the switch:
     * main is resumed with ping's result, as greenlet's parent is. */
    int r = green_switch(t, (void *)14, &got);
    cr_assert_eq(r, 0, "errno %d", errno);
    cr_expect_eq((intptr_t)got, 28);
    void *res;
    cr_assert_eq(green_join(t, &res), 0);
    cr_expect_eq((intptr_t)res, 28);
}

static void *value_reporter(void *arg)
{
    (void)arg;
    return green_switch_value();
}

Test(switch, a_thread_started_by_the_scheduler_sees_a_null_switch_value)
{
    green_t t = green_spawn(value_reporter, NULL, NULL);
    void *r = (void *)1;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_null(r);
}

Test(switch, switching_to_yourself_or_null_fails_with_einval)
{
    errno = 0;
    cr_expect_eq(green_switch(green_self(), NULL, NULL), -1);
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_eq(green_switch(NULL, NULL, NULL), -1);
    cr_expect_eq(errno, EINVAL);
}

static void *sleeper(void *arg)
{
    (void)arg;
    green_sleep(GREEN_MSEC(20));
    return NULL;
}

Test(switch, switching_to_a_thread_parked_elsewhere_fails_with_ebusy)
{
    green_t t = green_spawn(sleeper, NULL, NULL);
    cr_assert_eq(green_yield(), 0);          /* t now sleeps */
    errno = 0;
    cr_expect_eq(green_switch(t, NULL, NULL), -1);
    cr_expect_eq(errno, EBUSY);
    cr_assert_eq(green_join(t, NULL), 0);
}

static void *yielder(void *arg)
{
    (void)arg;
    green_yield();
    return NULL;
}

Test(switch, switching_to_a_runnable_thread_fails_with_ebusy)
{
    green_t t = green_spawn(yielder, NULL, NULL);
    cr_assert_eq(green_yield(), 0);          /* t ran and is runnable again */
    errno = 0;
    cr_expect_eq(green_switch(t, NULL, NULL), -1);
    cr_expect_eq(errno, EBUSY);
    cr_assert_eq(green_join(t, NULL), 0);
}

Test(switch, switching_to_a_finished_thread_fails_with_ebusy)
{
    green_t t = green_spawn(value_reporter, NULL, NULL);
    cr_assert_eq(green_yield(), 0);
    errno = 0;
    cr_expect_eq(green_switch(t, NULL, NULL), -1);
    cr_expect_eq(errno, EBUSY);
    cr_assert_eq(green_join(t, NULL), 0);
}

static void *bouncer(void *arg)
{
    green_t back = arg;
    void *v = green_switch_value();
    for (int i = 0; i < 1000; i++) {
        void *got;
        if (green_switch(back, (void *)((intptr_t)v + 1), &got) != 0)
            return (void *)-1;
        v = got;
    }
    return v;
}

Test(switch, a_thousand_round_trips_keep_values_in_order)
{
    green_t t = green_spawn(bouncer, green_self(), NULL);
    intptr_t v = 0;
    for (int i = 0; i < 1000; i++) {
        void *got;
        cr_assert_eq(green_switch(t, (void *)v, &got), 0);
        cr_assert_eq((intptr_t)got, v + 1);
        v = (intptr_t)got + 1;
    }
    void *got;
    cr_assert_eq(green_switch(t, (void *)v, &got), 0);  /* t returns v */
    cr_expect_eq((intptr_t)got, v);
    cr_assert_eq(green_join(t, NULL), 0);
}

static void *switch_and_report(void *arg)
{
    green_t back = arg;
    int r = green_switch(back, (void *)1, NULL);   /* parks in the switch */
    return (void *)(intptr_t)(r == -1 ? errno : 0);
}

Test(switch, killing_a_thread_waiting_in_a_switch_makes_the_switch_fail_with_ecanceled)
{
    green_t t = green_spawn(switch_and_report, green_self(), NULL);
    void *got = NULL;
    cr_assert_eq(green_switch(t, NULL, &got), 0);   /* t switched back */
    cr_expect_eq((intptr_t)got, 1);
    cr_assert_eq(green_kill(t), 0);
    errno = 0;
    cr_expect_eq(green_switch(t, NULL, NULL), -1);   /* now runnable */
    cr_expect_eq(errno, EBUSY);
    void *r = NULL;
    cr_assert_eq(green_join(t, &r), 0);
    cr_expect_eq((intptr_t)r, ECANCELED);
}
