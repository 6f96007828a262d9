/*
 * stack.c - green thread stacks: mmap'd, a guard zone below, pooled.
 *
 * Guard zones. Below every guarded stack lie 64 KiB that fault on any
 * access. Where the kernel offers guard markers (MADV_GUARD_INSTALL,
 * Linux 6.13), the zone is a run of markers in the page table of an
 * ordinary read-write mapping: it costs no mapping of its own, so
 * guarded stacks of the default size are carved from slabs of
 * GREEN__SLAB_STACKS (guard + stack) slots, one mapping per slab, and
 * every other guarded stack is one mapping. Measured (legacy_http, 5000
 * idle keep-alive connections, /proc/slabinfo before and after): 2
 * vm_area_struct + 2 anon_vma_chain + 1 anon_vma per stack before, about
 * 0.5 KiB of kernel slab per connection; none after (2.00 mappings per
 * connection before, 0.00 after). A new guarded stack costs one madvise
 * instead of an mmap and an mprotect (strace -c -f, 2000 connections:
 * 4,028 mmap + mprotect + munmap before, 2,062 with madvise after).
 *
 * Without markers (a kernel older than 6.13 refuses the advice; asked
 * once, with a two-page probe) a guarded stack is its own
 * mapping whose lowest 64 KiB are PROT_NONE: that costs two entries in
 * the process's map table (vm.max_map_count, 65530 by default), so about
 * 32,000 guarded stacks fit in a process. Past that, mmap or mprotect
 * fails with ENOMEM; green_spawn then fails with ENOMEM and a one-time
 * message on stderr says what happened and how to choose unguarded
 * stacks (GREEN_STACK_GUARD=0 or green_attr_t.guard = 2).
 * Unguarded stacks are carved from slabs too, without the guard slots, so
 * 100,000 of them cost about 1,600 mappings. An unguarded stack that
 * overflows corrupts its neighbour silently: it is the user's choice.
 *
 * Stacks are pooled per OS thread, per size: in the steady state spawning a
 * green thread makes no syscall. The pool keeps at most GREEN__POOL_MAX
 * stacks of the default size of each kind, and GREEN__SIZED_MAX of other
 * sizes (searched by exact size); beyond that a stack of its own mapping
 * is unmapped, and a slab stack, which cannot be unmapped alone, goes
 * cold: MADV_DONTNEED gives its pages back and its address goes to a
 * per-OS-thread array (16 bytes a stack), taken after the pool and the
 * spill list, before a new slot is carved. A burst of threads leaves
 * address space and page-table pages behind (about 0.6 KiB a stack: the
 * guard markers keep them), no stack pages. A slab stack of an old
 * default size past GREEN__SIZED_MAX keeps its top page (its link).
 *
 * With several hubs stacks flow: a thread's stack comes from its
 * spawner's pool and returns to the pool of the hub it ran on, so a
 * daemon's accept loop would drain its own pool (an mmap and an mprotect
 * per spawn) while the other hubs' pools fill up (and unmap). So a hub
 * whose pool of default-size stacks passes SPILL_AT moves SPILL_BATCH of
 * them to a process-wide spill list, and a hub whose pool is empty takes
 * a batch from it before it maps a new stack: one short spin-locked
 * step per SPILL_BATCH stacks. The list holds at most SPILL_MAX; past
 * that the pools keep stacks and unmap beyond GREEN__POOL_MAX, as
 * before. Measured (2 hubs, spawn and join in
 * batches of 64 across both, strace -c -f): 0.85 mmap + mprotect +
 * munmap per spawn before, none after.
 *
 * Overflow: each OS thread with a hub has a sigaltstack, and a SIGSEGV /
 * SIGBUS handler checks whether the fault address lies in the guard zone
 * of the current green thread (a marker and a PROT_NONE page fault alike,
 * with the address in si_addr). If so it writes "stack overflow in green
 * thread ID (NAME)" to stderr, restores the default action and returns, so
 * the faulting instruction kills the process with SIGSEGV. Other faults go
 * to the handler that was installed before ours, or get the default action.
 * The reporter stands in front of the default action only, and of
 * handlers installed behind libc's back (a sanitizer's): a handler the
 * program installs (hooks/signal.c) replaces it, and one the program had
 * installed before the first hub is left in place, with its own flags (a
 * handler without SA_ONSTACK must run on the interrupted stack: the
 * program's alternate stack may be unusable, as in LTP's signal06, and
 * the kernel then kills a process whose SIGSEGV action asks for it).
 * sigaction reports the action the reporter stands in front of
 * (green__stack_fault_prior); a program that sets SIG_DFL again gets the
 * reporter back in front of it (green__stack_fault_program).
 * Markers are copied by fork; a stack that goes cold keeps them (its
 * MADV_DONTNEED covers [lo, hi) only).
 *
 * Invariants: s->own exactly for stacks of their own mapping (unmapped
 * when the pool is full), which starts at the guard zone (stack_unmap);
 * slab stacks are never unmapped; a guarded stack's
 * [lo - guard_bytes(), lo) faults.
 *
 * Rejected: growing stacks (needs compiler help, as in Go); copying stacks
 * (greenlet does it, but pointers into the stack from other threads, which
 * C programs make all the time, would dangle); a smaller guard zone or
 * none by default to save page tables (the 64 KiB are a fifth of the
 * stacks' page-table pages, 0.13 KiB per stack, and one page is jumped
 * over by a large frame); placing the thread's struct in its stack's top
 * page. That would save its heap chunk (557 bytes per idle legacy_http
 * connection, measured by taking it out of the heap) only where the
 * stack's deepest page has room to spare, and it costs a page where it
 * has not: legacy_http's stacks are touched 7,592 bytes deep (by the
 * snprintf that formats a response; it parks 6.3 KiB deep), 600 short of
 * a second page's end, and with the struct and the pool link (640 bytes)
 * above its frames each of its stacks touched 3 pages instead of 2, 4 KiB
 * more per connection. Over all depths the struct costs its size
 * wherever it lives, so its size is what was cut (green_internal.h).
 * Structs also outlive stacks: a finished thread's stack is pooled before
 * it is joined, a joined thread's handle stays readable, and a cold
 * stack's pages are given back.
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef GREEN_VALGRIND
#include <valgrind/valgrind.h>
#endif
#ifdef GREEN_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102          /* Linux 6.13 uapi */
#endif

#define GREEN__POOL_MAX 1024
#define GREEN__SLAB_STACKS 64

/* A pooled stack's bookkeeping lives in the top bytes of the stack itself
 * (the page is already resident: the thread ran on it), so pooling costs
 * no malloc/free per spawn. */
struct pooled {
    struct pooled *next;
    struct green__stack s;
};

/* Per OS thread pools: guarded and unguarded stacks of the default size. */
struct pool {
    struct pooled *head;
    size_t n;
};
static __thread struct pool pool_guarded, pool_plain;
/* Stacks of other sizes (pthread_attr_setstacksize under the shim, the
 * stack_size attribute): a short list searched for an exact size, so that
 * spawning with a custom size makes no syscall in the steady state either.
 * Also home to slab stacks of an old default size, which cannot be
 * unmapped alone. */
static __thread struct pool pool_sized;
#define GREEN__SIZED_MAX 64
/* The current slab of each kind (0 unguarded, 1 guarded): slots not yet
 * handed out are carved from it in order (a bump allocator); returned
 * stacks go to the pools. A guarded slot is the guard zone, then the
 * stack. */
struct slab {
    char *next;                    /* the next slot */
    size_t left;                   /* slots not handed out yet */
    size_t size;                   /* stack bytes of its slots */
};
static __thread struct slab slabs[2];

/* The spill list (the essay above), default-size stacks only, one list
 * per kind (0 unguarded, 1 guarded). */
#define SPILL_AT 96
#define SPILL_BATCH 32
#define SPILL_MAX (2 * GREEN__POOL_MAX)   /* past it, pools keep (and unmap) */
static atomic_flag spill_lock;
static struct pool spill[2];

static void spill_take_lock(void)
{
    while (atomic_flag_test_and_set_explicit(&spill_lock, memory_order_acquire))
        GREEN_REAL(sched_yield)();
}

/* Move SPILL_BATCH stacks from pl (over SPILL_AT) to the spill list. */
static void spill_out(struct pool *pl, int kind)
{
    struct pooled *first = pl->head, *last = first;
    for (int i = 1; i < SPILL_BATCH; i++)
        last = last->next;
    pl->head = last->next;
    pl->n -= SPILL_BATCH;
    spill_take_lock();
    /* head and n are also read without the lock (a peek): atomic stores. */
    last->next = spill[kind].head;
    __atomic_store_n(&spill[kind].head, first, __ATOMIC_RELAXED);
    __atomic_store_n(&spill[kind].n, spill[kind].n + SPILL_BATCH, __ATOMIC_RELAXED);
    atomic_flag_clear_explicit(&spill_lock, memory_order_release);
}

/* Refill an empty pl with up to SPILL_BATCH stacks of the spill list;
 * true if any came. */
static bool spill_in(struct pool *pl, int kind)
{
    if (!__atomic_load_n(&spill[kind].head, __ATOMIC_RELAXED))
        return false;
    spill_take_lock();
    struct pooled *first = spill[kind].head, *last = first;
    size_t k = 0;
    if (first) {
        k = 1;
        while (k < SPILL_BATCH && last->next) {
            last = last->next;
            k++;
        }
        __atomic_store_n(&spill[kind].head, last->next, __ATOMIC_RELAXED);
        __atomic_store_n(&spill[kind].n, spill[kind].n - k, __ATOMIC_RELAXED);
    }
    atomic_flag_clear_explicit(&spill_lock, memory_order_release);
    if (!first)
        return false;
    last->next = pl->head;
    pl->head = first;
    pl->n += k;
    return true;
}

void green__stack_after_fork_child(void)
{
    atomic_flag_clear(&spill_lock);
}

static size_t page_size_cached;

size_t green__page_size(void)
{
    if (!page_size_cached)
        page_size_cached = (size_t)sysconf(_SC_PAGESIZE);
    return page_size_cached;
}

/* The PROT_NONE zone below a guarded stack. One page is not enough: a
 * frame bigger than a page (a local buffer) whose first access is at its
 * low end jumps over a single guard page into whatever is mapped below,
 * typically the top of another green thread's stack, and corrupts it
 * silently. 64 KiB of PROT_NONE costs address space only, no memory and
 * no extra mapping. */
static size_t guard_bytes(void)
{
    size_t pg = green__page_size();
    return pg > 65536 ? pg : 65536;
}

static size_t round_pages(size_t n)
{
    size_t p = green__page_size();
    return (n + p - 1) & ~(p - 1);
}

/* Guard markers: 1 the kernel installs them, -1 it does not (or a test
 * said not to use them), 0 not asked yet. */
static atomic_int markers;

static bool markers_ask(void)
{
    size_t pg = green__page_size();
    void *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return false;
    bool ok = madvise(m, pg, MADV_GUARD_INSTALL) == 0;
    munmap(m, 2 * pg);
    return ok;
}

bool green__stack_guard_markers(int want)
{
    if (want == 0)
        atomic_store(&markers, -1);
    int v = atomic_load_explicit(&markers, memory_order_relaxed);
    if (!v) {
        int got = markers_ask() ? 1 : -1;
        atomic_compare_exchange_strong(&markers, &v, got);
        v = atomic_load(&markers);
    }
    return v > 0;
}

/* Make [p, p + guard_bytes()) of a read-write mapping fault. */
static int guard_install(void *p)
{
    if (green__stack_guard_markers(-1) &&
        madvise(p, guard_bytes(), MADV_GUARD_INSTALL) == 0)
        return 0;
    return mprotect(p, guard_bytes(), PROT_NONE) == 0 ? 0 : errno;
}

static void vg_register(struct green__stack *s)
{
#ifdef GREEN_VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, s->hi);
#else
    (void)s;
#endif
}

static void vg_deregister(struct green__stack *s)
{
#ifdef GREEN_VALGRIND
    if (s->vg_id)
        VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    s->vg_id = 0;
}

/* A stack abandoned by a finished thread keeps the ASan shadow of the
 * frames that were live on it; clear it before the memory is reused. */
static void asan_unpoison(const struct green__stack *s)
{
#ifdef GREEN_ASAN
    __asan_unpoison_memory_region(s->lo, (size_t)((char *)s->hi - (char *)s->lo));
#else
    (void)s;
#endif
}

static void report_map_limit(void)
{
    static atomic_flag said = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&said))
        return;
    green__log("cannot map another guarded green-thread stack (ENOMEM). "
               "Each guarded stack of its own mapping costs up to 2 of the process's "
               "vm.max_map_count memory mappings (about 32k stacks with the "
               "default 65530). Set GREEN_STACK_GUARD=0 for unguarded slab "
               "stacks, or raise vm.max_map_count.");
}

static int map_guarded(struct green__stack *s, size_t size)
{
    size_t pg = guard_bytes();
    size_t total = size + pg;
    void *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                   -1, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        if (e == ENOMEM)
            report_map_limit();
        return e;
    }
    int e = guard_install(m);
    if (e) {
        munmap(m, total);
        if (e == ENOMEM)
            report_map_limit();
        return e;
    }
    *s = (struct green__stack){ .lo = (char *)m + pg, .hi = (char *)m + total,
                                .guarded = true, .own = true };
    return 0;
}

/* Stacks of the default size come from slabs that are never unmapped:
 * they return to the pools. A guarded slot gets its markers when it is
 * carved (so that a slab's page tables fill as its stacks are used). */
static int slab_take(struct green__stack *s, size_t size, bool guarded)
{
    struct slab *sl = &slabs[guarded];
    size_t gb = guarded ? guard_bytes() : 0;
    if (!sl->left || sl->size != size) {
        void *m = mmap(NULL, (size + gb) * GREEN__SLAB_STACKS, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                       -1, 0);
        if (m == MAP_FAILED)
            return errno;
        *sl = (struct slab){ .next = m, .left = GREEN__SLAB_STACKS, .size = size };
    }
    if (guarded) {
        if (madvise(sl->next, gb, MADV_GUARD_INSTALL) != 0)
            return errno;
    }
    *s = (struct green__stack){ .lo = sl->next + gb, .hi = sl->next + gb + size,
                                .guarded = guarded };
    sl->next += gb + size;
    sl->left--;
    return 0;
}

static size_t stack_bytes(const struct green__stack *s)
{
    return (size_t)((char *)s->hi - (char *)s->lo);
}

/* Unmap a stack of its own mapping: the guard zone below lo, if any, is
 * the start of it (map_guarded), so the record needs no base of its own. */
static void stack_unmap(const struct green__stack *s)
{
    char *base = (char *)s->lo - (s->guarded ? guard_bytes() : 0);
    munmap(base, (size_t)((char *)s->hi - base));
}

static void asan_unpoison(const struct green__stack *s);

/* A slab stack of an old size past what pool_sized keeps gives back its
 * pages but the top one (pool_push writes its link there). */
static void cool(const struct green__stack *s)
{
    size_t pg = green__page_size();
    if (stack_bytes(s) > pg)
        madvise(s->lo, stack_bytes(s) - pg, MADV_DONTNEED);
}

/* Link s into pl, keeping the link in the stack's own top bytes. */
static void pool_push(struct pool *pl, struct green__stack *s)
{
    uintptr_t top = (uintptr_t)s->hi - sizeof(struct pooled);
    struct pooled *p = (struct pooled *)(top & ~(uintptr_t)15);
    asan_unpoison(s);
    p->s = *s;
    p->next = pl->head;
    pl->head = p;
    pl->n++;
}

/* Keep a stack of a non-default size, or unmap it when the list is full. */
static void sized_put(struct green__stack *s)
{
    if (pool_sized.n < GREEN__SIZED_MAX || !s->own) {
        if (pool_sized.n >= GREEN__SIZED_MAX)
            cool(s);
        pool_push(&pool_sized, s);
    }
    else
        stack_unmap(s);
}

/* Cold slab stacks (the essay), per OS thread and kind. */
struct cold_one {
    char *lo;
    size_t size;
};
struct cold {
    struct cold_one *v;
    size_t n, cap;
};
static __thread struct cold colds[2];

/* Give a slab stack's pages back and keep its address; false (nothing
 * done) when the array cannot grow. */
static bool cold_put(const struct green__stack *s)
{
    struct cold *c = &colds[s->guarded];
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        struct cold_one *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return false;
        c->v = v;
        c->cap = cap;
    }
    madvise(s->lo, stack_bytes(s), MADV_DONTNEED);
    c->v[c->n++] = (struct cold_one){ .lo = s->lo, .size = stack_bytes(s) };
    return true;
}

/* The newest cold stack of exactly size bytes; those of an old default
 * size met on the way move to pool_sized. */
static int cold_take(struct green__stack *s, size_t size, bool guarded)
{
    struct cold *c = &colds[guarded];
    while (c->n) {
        struct cold_one o = c->v[--c->n];
        struct green__stack got = { .lo = o.lo, .hi = o.lo + o.size, .guarded = guarded };
        if (o.size == size) {
            *s = got;
            return 1;
        }
        sized_put(&got);
    }
    return 0;
}

/* Take a stack of exactly size bytes and the given guard from the list. */
static int take_sized(struct green__stack *s, size_t size, bool guarded)
{
    for (struct pooled **pp = &pool_sized.head; *pp; pp = &(*pp)->next) {
        struct pooled *p = *pp;
        if (stack_bytes(&p->s) == size && p->s.guarded == guarded) {
            *pp = p->next;
            pool_sized.n--;
            *s = p->s;
            return 1;
        }
    }
    return 0;
}

/* Pop a pooled stack of exactly size bytes. Stacks of another size (the
 * default changed since they were pooled) move to the sized list. */
static int take_pooled(struct pool *pl, struct green__stack *s, size_t size)
{
    struct pooled *p;
    while ((p = pl->head)) {
        pl->head = p->next;
        pl->n--;
        struct green__stack got = p->s;
        if (stack_bytes(&got) == size) {
            *s = got;
            return 1;
        }
        sized_put(&got);
    }
    return 0;
}

int green__stack_get(struct green__stack *s, size_t size, int guard)
{
    size_t def = green_default_stack_size();
    bool guarded = guard == 1 || (guard <= 0 && green__default_guard);
    size = size ? round_pages(size) : def;
    if (size == def) {
        struct pool *pl = guarded ? &pool_guarded : &pool_plain;
        if (take_pooled(pl, s, size) || (spill_in(pl, guarded) && take_pooled(pl, s, size)) ||
            cold_take(s, size, guarded))
            goto done;
        if (!guarded || green__stack_guard_markers(-1)) {
            int e = slab_take(s, size, guarded);
            if (e)
                return e;
            goto done;
        }
    } else if (take_sized(s, size, guarded)) {
        goto done;
    }
    if (guarded) {
        int e = map_guarded(s, size);
        if (e)
            return e;
    } else {
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                       -1, 0);
        if (m == MAP_FAILED)
            return errno;
        *s = (struct green__stack){ .lo = m, .hi = (char *)m + size, .guarded = false,
                                    .own = true };
    }
done:
    /* Also for fresh mappings: an address range unmapped by an earlier
     * stack keeps that stack's shadow in ASan. */
    asan_unpoison(s);
    vg_register(s);
    return 0;
}

void green__stack_put(struct green__stack *s)
{
    if (!s->lo)
        return;
    vg_deregister(s);
    size_t size = (size_t)((char *)s->hi - (char *)s->lo);
    bool pooled_size = size == green_default_stack_size();
    struct pool *pl = s->guarded ? &pool_guarded : &pool_plain;
    bool full = pl->n >= GREEN__POOL_MAX;
    if (!pooled_size)
        sized_put(s);
    else if (full && s->own)
        stack_unmap(s);
    else if (!full || !cold_put(s)) {   /* a slab stack that went cold is done */
        pool_push(pl, s);
        if (green__unlikely(pl->n > SPILL_AT) && green__hubs_n() > 1 &&
            __atomic_load_n(&spill[s->guarded].n, __ATOMIC_RELAXED) < SPILL_MAX)
            spill_out(pl, s->guarded);
    }
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------ overflow report */

static struct sigaction old_segv, old_bus;
static atomic_int handler_installed;
/* The program's action for SIGSEGV (0) or SIGBUS (1) is its own (a
 * handler, or SIG_IGN): the reporter is not installed over it. */
static atomic_bool program_own[2];

static void fault_handler(int sig, siginfo_t *si, void *uc);

static struct sigaction reporter_action(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    return sa;
}

bool green__stack_fault_prior(int sig, void (*fn)(int, siginfo_t *, void *),
                              struct sigaction *prior)
{
    if (fn != fault_handler || (sig != SIGSEGV && sig != SIGBUS))
        return false;
    *prior = sig == SIGSEGV ? old_segv : old_bus;
    return true;
}

bool green__stack_fault_program(int sig, const struct sigaction *act)
{
    bool dfl = act->sa_handler == SIG_DFL;
    atomic_store(&program_own[sig == SIGBUS], !dfl);
    if (!dfl || !atomic_load(&handler_installed))
        return false;
    *(sig == SIGSEGV ? &old_segv : &old_bus) = *act;
    struct sigaction sa = reporter_action();
    return GREEN_REAL(sigaction)(sig, &sa, NULL) == 0;
}

static size_t fmt_u64(char *b, uint64_t v)
{
    char t[24];
    size_t n = 0, i = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        b[i++] = t[--n];
    return i;
}

/* Async-signal-safe: builds the line by hand and writes it once. */
static void say_overflow(const struct green_thread *t)
{
    char b[256];
    size_t n = 0;
    const char *a = "libgreen: stack overflow in green thread ";
    memcpy(b, a, strlen(a));
    n += strlen(a);
    n += fmt_u64(b + n, t->id);
    b[n++] = ' ';
    b[n++] = '"';
    size_t nl = strnlen(t->name, GREEN__NAME_MAX);
    memcpy(b + n, t->name, nl);
    n += nl;
    const char *c = "\" (stack of ";
    memcpy(b + n, c, strlen(c));
    n += strlen(c);
    n += fmt_u64(b + n, (uint64_t)((char *)t->stack.hi - (char *)t->stack.lo) / 1024);
    const char *d = " KiB hit its guard page)\n";
    memcpy(b + n, d, strlen(d));
    n += strlen(d);
    ssize_t r = GREEN_REAL(write)(2, b, n);
    (void)r;
}

/* Give the signal back to the kernel's default action (libc's signal()
 * would reach the shim's hook). */
static void set_default(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    GREEN_REAL(sigaction)(sig, &sa, NULL);
}

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
    struct green_thread *t = green__current();
    char *addr = si->si_addr;
    size_t pg = guard_bytes();
    if (t && t->stack.guarded && addr >= (char *)t->stack.lo - pg &&
        addr < (char *)t->stack.lo) {
        say_overflow(t);
        set_default(sig);
        return;   /* the fault repeats with the default action: death */
    }
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uc);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    set_default(sig);
}

/* This OS thread's alternate signal stack of libgreen's own, which the
 * kernel has while a green thread without one of its own runs (and the
 * hub): ss_flags SS_DISABLE if none could be made. */
static __thread stack_t own_alt = { .ss_flags = SS_DISABLE };

void green__alt_install(struct green__ctx *c, const struct green__alt *a)
{
    stack_t ss = own_alt;
    if (a)
        ss = (stack_t){ .ss_sp = a->sp, .ss_size = a->size, .ss_flags = a->flags };
    GREEN_REAL(sigaltstack)(&ss, NULL);
    c->alt_sp = a ? a->sp : NULL;
    c->alt_size = a ? a->size : 0;
}

bool green__stack_on_own_alt(void)
{
    char here;
    return !(own_alt.ss_flags & SS_DISABLE) &&
           (uintptr_t)&here - (uintptr_t)own_alt.ss_sp < own_alt.ss_size;
}

/* Which alternate stack the kernel should have when next runs instead of
 * from. A green thread's own while it runs; libgreen's while one without
 * runs. The hub runs with whatever is there (a thread that parks and is
 * resumed through the hub costs nothing), unless the thread leaving ended
 * (its stack may be freed) or is on its alternate stack (a handler that
 * parked: a signal the kernel delivers while the hub runs must not land
 * on its frames). */
void green__alt_switch(struct green__ctx *c, struct green_thread *from,
                       struct green_thread *next)
{
    const struct green__alt *a = NULL;
    if (next->is_hub) {
        const struct green__alt *f = green__alt_of(from);
        if (!c->alt_sp || !f)
            return;
        char here;
        uintptr_t sp = from == c->current ? (uintptr_t)&here : (uintptr_t)from->sp;
        if (from->state != GREEN_DONE && sp - (uintptr_t)f->sp >= f->size)
            return;
    } else {
        a = green__alt_of(next);
    }
    if ((a ? a->sp : NULL) != c->alt_sp || (a ? a->size : 0) != c->alt_size)
        green__alt_install(c, a);
}

bool green__stack_install_overflow_handler(stack_t *prior)
{
    /* One alternate signal stack per OS thread (the handler must run
     * somewhere when the green stack is exhausted). One the program set
     * before is its first thread's (hooks/signal.c): libgreen makes its
     * own for the others and leaves the program's in place. */
    stack_t cur;
    bool had = GREEN_REAL(sigaltstack)(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE);
    if (had && prior)
        *prior = cur;
    if (own_alt.ss_flags & SS_DISABLE) {
        size_t sz = 64 * 1024;
        void *m = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            stack_t ss = { .ss_sp = m, .ss_size = sz, .ss_flags = 0 };
            if (!had && GREEN_REAL(sigaltstack)(&ss, NULL) != 0)
                munmap(m, sz);
            else
                own_alt = ss;
        }
    }
    int expect = 0;
    if (!atomic_compare_exchange_strong(&handler_installed, &expect, 1))
        return had;
    struct sigaction sa = reporter_action();
    if (!atomic_load(&program_own[0]))
        GREEN_REAL(sigaction)(SIGSEGV, &sa, &old_segv);
    if (!atomic_load(&program_own[1]))
        GREEN_REAL(sigaction)(SIGBUS, &sa, &old_bus);
    return had;
}
