/*
 * tls.c - thread-local storage per green thread (GREEN_TLS).
 *
 * What it is. `__thread` and C++ `thread_local` variables live in one
 * block per module (executable or shared library with a PT_TLS segment)
 * per OS thread, found from the thread pointer. Natively every pthread
 * has its own blocks; under the shim the green threads of one hub share
 * their OS thread's. With GREEN_TLS on, the green threads of a hub take
 * turns in those blocks: at a switch to a green thread that does not own
 * them, the owner's contents are copied out to its buffer and the new
 * thread's are copied in. Addresses never change (compiled code caches
 * thread-pointer-relative addresses across calls, and a thread never
 * leaves its hub once it ran), only contents do.
 *
 * Which modules. Every module dl_iterate_phdr lists with a PT_TLS segment
 * (dlpi_tls_modid; dlpi_tls_data is the calling OS thread's block; the
 * segment gives the size, p_memsz, and the initialisation image, p_vaddr
 * and p_filesz), except those whose state belongs to the OS thread:
 *  - libgreen's own module (its ctx pointer, stack pools, the hooks'
 *    per-OS-thread state), found by the address of this file's code;
 *  - glibc's libc.so.6, found by the address of errno (and its name):
 *    errno is already kept per green thread by the switch, so is the
 *    locale uselocale sets ("Locales", below), and the rest (malloc's
 *    tcache, the resolver, dlerror) are caches of the OS thread, or
 *    state a thread reads back before it could park;
 *  - the dynamic linker (ld-linux: no PT_TLS today, excluded by name so
 *    that a future one stays the OS thread's);
 *  - sanitizer runtimes (libasan, libtsan, libubsan, liblsan, libhwasan),
 *    whose thread state describes the OS thread, and the allocators that
 *    replace malloc (libjemalloc, libtcmalloc, libmimalloc): their thread
 *    caches are the OS thread's as glibc's tcache is, and jemalloc links
 *    the address of its per-thread data into a process-wide list, which
 *    one address shared by many green threads would corrupt.
 * Everything else is swapped, in particular libstdc++'s block: it holds
 * __cxa_get_globals' exception state (the exception being thrown or
 * caught), which must follow the green thread when a catch block parks
 * and another green thread throws. libgcc_s and glibc's libpthread stub
 * have no PT_TLS on our systems; if one had, it would be swapped (an
 * unwinder's per-thread state is the green thread's, as its exceptions).
 *
 * Ownership. A ctx (OS thread) records its owner, the green thread whose
 * contents are in the blocks. The hub runs libev and libgreen only,
 * neither of which is swapped, so switching to the hub swaps nothing and
 * leaves the owner in place: a thread that parks and is resumed next,
 * through the hub, costs no copy at all. A copy happens only when another
 * green thread runs (green__tls_enter). A new green thread starts from
 * each module's initialisation image (p_filesz bytes copied, the rest of
 * p_memsz zeroed), as a new pthread does; the main green thread of a ctx
 * starts with the contents the OS thread had. Signal handlers that run as
 * a thread that is not running (green__run_as) are given its contents.
 *
 * The cost. With no swappable module (a C program without TLS of its
 * own) the switch tests c->tls_n and does nothing else. Otherwise a
 * switch between two different green threads copies each module's block
 * twice (out and in). README "Thread-local storage" has the figures.
 *
 * Modules loaded later. dlopen adds modules, dlclose removes them; the
 * dynamic linker counts both (dlpi_adds, dlpi_subs). A ctx compares them
 * with what it saw at its last scan when a green thread is adopted by it
 * (spawn) and when its hub polls (the slow path; a walk that stops at the
 * first module, never a full walk per switch), and rescans on a change:
 * every saved buffer is re-laid out (a module kept keeps its contents, a
 * new one starts from its image for every thread but the owner, which
 * keeps what is in the block). While nothing was swapped the switch kept
 * no owner (that is its one-branch fast path): a first scan made by a
 * running thread (a spawn) makes it the owner; one made by the hub (a
 * poll) cannot tell who ran last, so every thread that ran gets a copy of
 * the blocks (the one that dlopen'd the library and set its variables
 * before it parked keeps them) and threads that never ran get images.
 * A dynamic-TLS block that this OS thread has not allocated yet
 * (dlpi_tls_data NULL) is allocated at once through __tls_get_addr, the
 * ABI entry compiled code itself calls, so that the block a green thread
 * later touches is one the swap knows. Between a dlopen and the next
 * spawn or poll the new module's block is shared by the hub's threads,
 * as without GREEN_TLS. A dlclose must be noticed before the next swap,
 * which would copy into the closed module's block and from its unmapped
 * image: the shim interposes dlclose (no caller semantics there, unlike
 * dlopen), which bumps a count (green__tls_unload_end); a swap compares
 * it with its ctx's (one load) and rescans first.
 *
 * dlclose and the other hubs. The count alone left a window: a swap on
 * another hub that had read it before the real dlclose copied from the
 * image the dlclose was unmapping (prog_tls dlclose with two hubs
 * crashed in load_image 4 times in 150 runs). So the hook brackets the
 * real dlclose: green__tls_unload_begin raises `closing` and waits until
 * no hub is inside a swap or rescan (c->tls_busy); while `closing` is up,
 * swaps copy only the modules loaded with the program (modid below
 * first_dynamic, which no dlclose can unload) and rescans wait for the
 * end; green__tls_unload_end counts the unload and lowers it. A swap
 * never waits (it runs inside a switch, and the dlclose may be waiting
 * for a green thread of that hub: a library destructor joining its
 * worker). The busy flag is a plain store on the swap side; the order
 * between it and the swap's load of `closing`, against begin's store and
 * its loads of the flags, comes from membarrier
 * (MEMBARRIER_CMD_PRIVATE_EXPEDITED) on begin's side, or, where the
 * kernel has none, from a fence in every swap. What a program can see:
 * while a dlclose runs, dlopen'd modules' variables are shared by the
 * threads of each hub (as between a dlopen and the next rescan); a
 * module the dlclose leaves loaded (other references) keeps the values
 * its blocks hold then.
 *
 * C++ destructors. A `thread_local` object with a destructor registers it
 * with __cxa_thread_atexit_impl (libstdc++ calls it on first use). While
 * swapping is on, hooks/tls_atexit.c hands those of green threads to
 * green__tls_atexit: a list per green thread, run in reverse order when
 * the thread ends (before its pthread keys' destructors, as glibc does,
 * and before its buffer is freed), and run for the calling green thread
 * when the process exits (one registration per OS thread with glibc's
 * list runs the current green thread's list, so exit() destroys the
 * caller's objects, as natively). A destructor in a shared library keeps
 * that library loaded until it ran (dlopen RTLD_NOLOAD), as glibc does.
 *
 * Invariants of swap mode, while c->tls_n > 0 (with none swapped,
 * nothing is kept):
 *  - c->tls_owner is NULL or a live green thread of c, never the hub;
 *    its contents are in the blocks, and its buffer is stale.
 *  - Every other live green thread of c that ran has tls_saved and a
 *    buffer laid out as c->tls_mods; one that never ran has !tls_saved
 *    and starts from the images.
 *  - Every live thread of c has tls_cap >= c->tls_size, so the switch
 *    never allocates.
 *
 * GREEN_TLS=address. Swapped contents share one address per OS thread,
 * which a program that hands a thread_local's address to another thread
 * cannot live with (the other thread writes into whichever copy is in
 * the block; InnoDB's group commit wakes each waiter through a pointer
 * to its thread_local record). In address mode each green thread gets a
 * thread pointer of its own instead (tp_make): a copy of the OS thread's
 * static TLS area and TCB (sizes from glibc's _dl_get_tls_static_info and
 * _thread_db_sizeof_pthread, checked against dl_iterate_phdr and glibc's
 * vector at start), the program's static blocks set from their images,
 * header.tcb pointing at the copy, and a dynamic thread vector of its own
 * (static slots rebased into the copy, dynamic ones unallocated: glibc's
 * __tls_get_addr allocates them for this thread pointer on first use,
 * and tp_free frees them). header.self stays the OS thread's struct
 * pthread: glibc's identity of the thread (stdio lock owners, its own
 * pthread_self) is the OS thread's, as in swap mode, so a green thread
 * parked inside stdio does not make the next one wait in the kernel for
 * its own hub. A switch loads the thread pointer (wrfsbase where the
 * kernel allows it, else arch_prctl; load_tp) after
 * copying along the blocks that stay the OS thread's (libgreen's,
 * sanitizers'; tp_enter); libc's block is per green thread (errno, the
 * locale; malloc's tcache is a pointer in it, shared). The hub always
 * runs on the OS thread's own pointer, so that no frame of the hub (its
 * loop, libev's ev_run, whose errno address a compiler may keep across
 * calls) sees the pointer change under it; libgreen's own __thread
 * variables are initial-exec (meson: lib_args), read at a fixed offset
 * from whatever pointer is loaded. Refused (addr_usable) off x86-64,
 * under TSan (its thread state is megabytes of TLS tied to the OS
 * thread), and with allocators whose per-thread data is linked by
 * address (jemalloc), which a copy would fork.
 *
 * Loading the pointer. arch_prctl(ARCH_SET_FS) is a system call (0.2 us
 * to 5 us on our machines: some hypervisors trap the write). Where the
 * kernel enabled the FSGSBASE instructions for user space (Linux 5.9+ on
 * CPUs that have them: AT_HWCAP2 says so) load_tp writes the base itself
 * with wrfsbase, which the kernel saves and restores with the thread as
 * it does the base arch_prctl set. Measured (bench_tls_N, green_switch
 * between two threads, build-bench): 238 ns per switch with arch_prctl,
 * 54 with wrfsbase, whatever the TLS size, against 21 / 42 / 452 ns for
 * GREEN_TLS=1 with 0 / 1 KiB / 16 KiB of program TLS.
 *
 * Locales. uselocale(3) sets the calling thread's locale, which libc
 * keeps in its own thread-local block (the locale and the ctype tables'
 * pointers that MB_CUR_MAX, isalpha, the wide-character and number
 * formatting functions read). That block is the OS thread's under
 * GREEN_TLS=1 and 0, so without more one green thread's uselocale was
 * every green thread's of its hub. So the shim interposes uselocale
 * (hooks/tls_atexit.c) and records each green thread's locale (t->locale,
 * NULL for the global one); a switch installs the next thread's with the
 * real uselocale when it differs from what libc has for the OS thread
 * (c->locale_now). A ctx pays one branch per switch until one of its
 * threads uses uselocale (c->locale_turns, sticky), then two loads. A new
 * thread starts in the global locale, as natively; the OS thread's
 * first thread keeps the one it had. The hub runs in whatever is
 * installed. Under GREEN_TLS=address libc's block is each thread's
 * already; the same bookkeeping runs, after the thread pointer changed,
 * and only repeats what is there.
 *
 * Rejected: changing the thread pointer by default (each green thread's
 * copy of the static area and TCB costs about 4.8 KiB of memory, 5,000
 * idle legacy_http connections: 25.7 KiB each against 20.9 with
 * GREEN_TLS=1, and a switch costs 54 ns against 21 where the program has
 * little TLS, a system call where FSGSBASE is off); copying one range spanning every block
 * (libc's and libgreen's blocks sit between the program's); interposing
 * dlopen to notice new modules at once (dlopen resolves relative names
 * and RUNPATH from its caller's address, which would become libgreen's);
 * interposing __tls_get_addr (every dynamic-TLS access would pay).
 */
#define _GNU_SOURCE
#include "green_internal.h"
#include <dlfcn.h>
#include <link.h>
#include <locale.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#if defined(__x86_64__)
#include <asm/prctl.h>
#include <sys/auxv.h>
#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)   /* Linux uapi, asm/hwcap2.h */
#endif
#endif
#ifdef GREEN_VALGRIND
#include <valgrind/valgrind.h>
#endif
#include <stddef.h>
#include <string.h>

bool green__tls_on;
/* dlclose calls so far (hooks/tls_atexit.c), process-wide. */
static atomic_uint unloads;
/* dlclose calls in progress, and the first module id dlopen may give
 * (the modules loaded with the program have lower ones: read when
 * libgreen starts). */
static atomic_int closing;
static size_t first_dynamic = SIZE_MAX;
static bool fence_swaps;           /* no membarrier: every swap fences */

#ifndef MEMBARRIER_CMD_PRIVATE_EXPEDITED
#define MEMBARRIER_CMD_PRIVATE_EXPEDITED (1 << 3)
#define MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (1 << 4)
#endif

static int max_modid(struct dl_phdr_info *i, size_t size, void *arg)
{
    (void)size;
    size_t *m = arg;
    if (i->dlpi_tls_modid > *m)
        *m = i->dlpi_tls_modid;
    return 0;
}

__attribute__((constructor)) static void tls_startup(void)
{
    size_t m = 0;
    dl_iterate_phdr(max_modid, &m);
    first_dynamic = m + 1;
    fence_swaps = green__syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                                 0, 0) != 0;
}

/* Enter c's busy region (a swap or rescan): true when a dlclose runs. */
static inline bool busy_enter(struct green__ctx *c)
{
    if (green__unlikely(fence_swaps)) {
        /* A sequentially consistent exchange and load: the store-load
         * order a fence would give (and ThreadSanitizer can follow). */
        __atomic_exchange_n(&c->tls_busy, 1, __ATOMIC_SEQ_CST);
        return atomic_load_explicit(&closing, memory_order_seq_cst) != 0;
    }
    __atomic_store_n(&c->tls_busy, 1, __ATOMIC_RELAXED);
    atomic_signal_fence(memory_order_seq_cst);
    return atomic_load_explicit(&closing, memory_order_relaxed) != 0;
}

static inline void busy_leave(struct green__ctx *c)
{
    __atomic_store_n(&c->tls_busy, 0, __ATOMIC_RELEASE);
}

void green__tls_unload_begin(void)
{
    atomic_fetch_add_explicit(&closing, 1, memory_order_seq_cst);
    if (!fence_swaps)
        green__syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    for (int i = 0; i < GREEN__HUBS_MAX; i++) {
        struct green__ctx *h = green__hubs_at(i);
        while (h && __atomic_load_n(&h->tls_busy, __ATOMIC_ACQUIRE))
            green__cpu_relax();
    }
}

/* A fork child has only the forking thread: no dlclose runs there. */
void green__tls_after_fork_child(void)
{
    atomic_store_explicit(&closing, 0, memory_order_relaxed);
}

void green__tls_unload_end(void)
{
    atomic_fetch_add_explicit(&unloads, 1, memory_order_release);
    atomic_fetch_sub_explicit(&closing, 1, memory_order_release);
}

/* One swapped module of a ctx. */
struct green__tls_mod {
    size_t modid;                  /* dlpi_tls_modid */
    char *block;                   /* this OS thread's block */
    const char *image;             /* initialisation image (p_vaddr) */
    size_t filesz, memsz;          /* image bytes; block bytes */
    size_t off;                    /* place in a thread's buffer */
};

/* One C++ thread_local destructor of a green thread. */
struct green__tls_dtor {
    struct green__tls_dtor *next;  /* registered earlier */
    void (*fn)(void *);
    void *obj;
    void *pin;                     /* dlopen handle of its library, or NULL */
};

/* ------------------------------------------------------------- the scan */

struct scan {
    struct green__tls_mod *mods;
    size_t n, cap;
    struct green__tls_sync *sync;  /* address mode: excluded blocks */
    size_t sync_n, sync_cap;
    char *os_tp;                   /* address mode: this OS thread's TP */
    bool quick;                    /* stop after the counters */
    bool counted;                  /* adds, subs were read */
    unsigned long long adds, subs;
    bool failed;                   /* out of memory */
};

static bool module_has(const struct dl_phdr_info *i, uintptr_t a)
{
    for (int k = 0; k < i->dlpi_phnum; k++) {
        const ElfW(Phdr) *p = &i->dlpi_phdr[k];
        if (p->p_type == PT_LOAD && a - (i->dlpi_addr + p->p_vaddr) < p->p_memsz)
            return true;
    }
    return false;
}

/* Modules whose thread-local state is the OS thread's (the essay): the
 * runtimes, and the allocators that replace malloc, whose per-thread data
 * is also linked by address (which rules out GREEN_TLS=address). */
static const char *const os_thread_names[] = {
    "ld-linux", "ld64.so", "libc.so", "libgreen", "libasan", "libtsan",
    "libubsan", "liblsan", "libhwasan",
};
static const char *const linked_alloc_names[] = {
    "libjemalloc", "libtcmalloc", "libmimalloc",
};

/* The entry of names[0..n) that path's file name starts with, or NULL. */
static const char *name_in(const char *path, const char *const *names, size_t n)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    for (size_t k = 0; k < n; k++)
        if (!strncmp(b, names[k], strlen(names[k])))
            return names[k];
    return NULL;
}

static bool excluded_by_name(const char *path)
{
    return name_in(path, os_thread_names, sizeof os_thread_names / sizeof *os_thread_names) ||
           name_in(path, linked_alloc_names,
                   sizeof linked_alloc_names / sizeof *linked_alloc_names);
}

/* Room in *arr (an array of *cap elements of elt bytes, n in use) for
 * one more, doubling from 8. False, with *failed set, when out of memory. */
static bool grow(void *arr, size_t *cap, size_t n, size_t elt, bool *failed)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? 2 * *cap : 8;
    void *m = realloc(*(void **)arr, c * elt);
    if (!m) {
        *failed = true;
        return false;
    }
    *(void **)arr = m;
    *cap = c;
    return true;
}

static bool note_sync(struct scan *s, size_t modid, char *block, size_t size);
static size_t tp_below;            /* static TLS blocks below the TP */

static int scan_cb(struct dl_phdr_info *i, size_t size, void *arg)
{
    struct scan *s = arg;
    if (!s->counted && size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof i->dlpi_subs) {
        s->adds = i->dlpi_adds;
        s->subs = i->dlpi_subs;
        s->counted = true;
    }
    if (s->quick)
        return 1;
    if (i->dlpi_tls_modid == 0)
        return 0;
    const ElfW(Phdr) *tls = NULL;
    for (int k = 0; k < i->dlpi_phnum; k++)
        if (i->dlpi_phdr[k].p_type == PT_TLS)
            tls = &i->dlpi_phdr[k];
    if (!tls || tls->p_memsz == 0)
        return 0;
    char *block = i->dlpi_tls_data;
    if (module_has(i, (uintptr_t)&green__tls_swap) ||
        (i->dlpi_name && excluded_by_name(i->dlpi_name))) {
        if (s->os_tp && !note_sync(s, i->dlpi_tls_modid, block, tls->p_memsz))
            return 1;
        return 0;
    }
    uintptr_t e = (uintptr_t)&errno;
    if (block && e - (uintptr_t)block < tls->p_memsz)
        return 0;                  /* libc's, whatever its name */
    if (!grow(&s->mods, &s->cap, s->n, sizeof *s->mods, &s->failed))
        return 1;
    s->mods[s->n++] = (struct green__tls_mod){
        .modid = i->dlpi_tls_modid, .block = block,
        .image = (const char *)(i->dlpi_addr + tls->p_vaddr),
        .filesz = tls->p_filesz, .memsz = tls->p_memsz,
    };
    return 0;
}

/* The calling OS thread's block of module modid, allocated now if it was
 * not yet: __tls_get_addr is what compiled code calls for dynamic TLS.
 * Called outside dl_iterate_phdr, whose lock it must not nest in. */
static char *force_block(size_t modid)
{
    static void *(*get)(void *);
    if (!get)
        *(void **)&get = dlsym(RTLD_DEFAULT, "__tls_get_addr");
    if (!get)
        return NULL;
    struct { unsigned long module, offset; } ti = { modid, 0 };
    return get(&ti);
}

/* The modules of the calling OS thread, with blocks. */
static bool scan_modules(struct scan *s)
{
    dl_iterate_phdr(scan_cb, s);
    if (s->failed)
        return false;
    size_t k = 0, off = 0;
    for (size_t j = 0; j < s->n; j++) {
        struct green__tls_mod m = s->mods[j];
        if (!m.block && !s->os_tp)
            m.block = force_block(m.modid);
        if (!m.block && s->os_tp) {
            s->mods[k++] = m;      /* dynamic, not allocated here yet */
            continue;
        }
        if (!m.block) {
            green__warn("thread-local storage of module %zu stays per OS thread: "
                        "no block", m.modid);
            continue;
        }
        m.off = off;
        off += (m.memsz + 15) & ~(size_t)15;
        s->mods[k++] = m;
    }
    s->n = k;
    return true;
}

/* ------------------------------------------------------------- rescans */

static void load_image(const struct green__tls_mod *m, char *dst)
{
    memcpy(dst, m->image, m->filesz);
    memset(dst + m->filesz, 0, m->memsz - m->filesz);
}

static const struct green__tls_mod *old_mod(const struct green__ctx *c,
                                            const struct green__tls_mod *m)
{
    for (size_t k = 0; k < c->tls_n; k++) {
        const struct green__tls_mod *o = &c->tls_mods[k];
        if (o->modid == m->modid && o->image == m->image && o->memsz == m->memsz)
            return o;
    }
    return NULL;
}

/* t's buffer laid out as s, from its buffer laid out as c's table. */
static void relayout(const struct green__ctx *c, const struct scan *s,
                     const struct green_thread *t, char *nb)
{
    for (size_t j = 0; j < s->n; j++) {
        const struct green__tls_mod *m = &s->mods[j];
        const struct green__tls_mod *o = old_mod(c, m);
        if (o)
            memcpy(nb + m->off, t->tls_buf + o->off, m->memsz);
        else
            load_image(m, nb + m->off);
    }
}

static size_t layout_size(const struct scan *s)
{
    if (!s->n)
        return 0;
    const struct green__tls_mod *l = &s->mods[s->n - 1];
    return l->off + ((l->memsz + 15) & ~(size_t)15);
}

/* t's buffer laid out as s, from what the blocks hold now. */
static void copy_blocks(const struct scan *s, char *nb)
{
    for (size_t j = 0; j < s->n; j++)
        memcpy(nb + s->mods[j].off, s->mods[j].block, s->mods[j].memsz);
}

/* Install s as c's table: every live thread's buffer re-laid out (all
 * allocated first, so that a failure keeps the old table whole). */
static bool install(struct green__ctx *c, struct scan *s)
{
    /* Nothing swapped until now and no owner known (a scan from the hub):
     * the blocks hold the values of whichever thread ran last, maybe the
     * one that dlopen'd the library and set them before it parked. Every
     * thread that ran gets a copy, so that one keeps them; a thread that
     * never ran starts from the images. */
    bool unknown = !c->tls_n && !c->tls_owner;
    size_t size = layout_size(s), n = 0;
    for (struct green_thread *t = c->all; t; t = t->all_next)
        n++;
    char **nbs = calloc(n ? n : 1, sizeof *nbs);
    if (!nbs)
        return false;
    size_t k = 0;
    for (struct green_thread *t = c->all; t; t = t->all_next, k++) {
        if (t->is_hub || t->state == GREEN_DONE || !size)
            continue;              /* an ended thread waits for its join */
        nbs[k] = malloc(size);
        if (!nbs[k]) {
            while (k--)
                free(nbs[k]);
            free(nbs);
            return false;
        }
    }
    k = 0;
    for (struct green_thread *t = c->all; t; t = t->all_next, k++) {
        if (t->is_hub || t->state == GREEN_DONE)
            continue;
        /* The owner's contents are in the blocks; a thread that never
         * ran starts from the images. */
        bool keep = t->tls_saved && t != c->tls_owner && nbs[k];
        if (keep) {
            relayout(c, s, t, nbs[k]);
        } else if (unknown && t->state != GREEN_NEW && nbs[k]) {
            copy_blocks(s, nbs[k]);
            keep = true;
        }
        free(t->tls_buf);
        t->tls_buf = nbs[k];
        t->tls_cap = nbs[k] ? size : 0;
        t->tls_saved = keep;
    }
    free(nbs);
    free(c->tls_mods);
    c->tls_mods = s->mods;
    c->tls_size = size;
    c->tls_adds = s->adds;
    c->tls_subs = s->subs;
    c->tls_n = s->n;
    c->tls_turns = s->n != 0;      /* last: the switch's one test */
    return true;
}

static bool install_addr(struct green__ctx *c, struct scan *s);

static void rescan(struct green__ctx *c)
{
    struct scan s = { .os_tp = green__tls_addr ? c->tls_os_tp : NULL };
    /* While nothing was swapped the switches kept no owner: the thread
     * running now (main, for a new ctx) keeps what the blocks hold; from
     * the hub, see install. */
    if (!c->tls_n && !green__tls_addr)
        c->tls_owner = c->current && !c->current->is_hub ? c->current : NULL;
    /* Before the walk: a dlclose during it makes the next swap look again. */
    unsigned u = atomic_load_explicit(&unloads, memory_order_acquire);
    if (!scan_modules(&s) || !(s.os_tp ? install_addr(c, &s) : install(c, &s))) {
        free(s.mods);
        free(s.sync);
        green__warn("out of memory while laying out thread-local storage; "
                    "trying again later");
        return;
    }
    c->tls_unloads = u;
    green__debug("thread-local storage: %zu module(s), %zu bytes per green thread",
                 c->tls_n, c->tls_size);
}

void green__tls_check(struct green__ctx *c)
{
    if (busy_enter(c)) {           /* a dlclose runs: the next poll looks */
        busy_leave(c);
        return;
    }
    struct scan s = { .quick = true };
    dl_iterate_phdr(scan_cb, &s);
    if (s.counted && (s.adds != c->tls_adds || s.subs != c->tls_subs))
        rescan(c);
    busy_leave(c);
}

/* ------------------------------------------------ GREEN_TLS=address */

bool green__tls_addr;

/* A block that stays the OS thread's: copied from the thread pointer
 * being left to the one being loaded, tp - off .. + size. A dynamic one
 * (not in the static area) is shared as is: its module id is kept. */
struct green__tls_sync {
    size_t off, size;              /* off 0: a dynamic block, kept */
    size_t modid;
};

/* glibc's dynamic thread vector: dtv[-1] counts the slots, dtv[0] is the
 * generation, dtv[1..] one per module (val: the block, to_free: what
 * glibc malloc'd for a dynamic one). Unchanged since glibc 2.26. */
typedef union {
    size_t counter;
    struct {
        void *val;
        void *to_free;
    } p;
} dtv_slot;
#define DTV_UNALLOCATED ((void *)-1L)

static size_t tp_tcb;              /* glibc's TCB above it */
static size_t tp_align;
extern __attribute__((weak)) const ptrdiff_t __rseq_offset;
extern __attribute__((weak)) const unsigned int __rseq_size;

/* block..+size lies in the static TLS area below the thread pointer os. */
static bool in_static_area(const char *os, const char *block, size_t size)
{
    return block && block >= os - tp_below && block + size <= os;
}

static bool note_sync(struct scan *s, size_t modid, char *block, size_t size)
{
    if (!grow(&s->sync, &s->sync_cap, s->sync_n, sizeof *s->sync, &s->failed))
        return false;
    bool stat = in_static_area(s->os_tp, block, size);
    s->sync[s->sync_n++] = (struct green__tls_sync){
        .off = stat ? (size_t)(s->os_tp - block) : 0, .size = size, .modid = modid };
    return true;
}

#if defined(__x86_64__)
static char *read_tp(void)
{
    char *tp;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}

/* Set by tp_layout: the kernel lets this process write its FS base
 * itself (the CPU's FSGSBASE instructions, enabled by Linux 5.9 and
 * later where the CPU has them; the kernel says so in AT_HWCAP2). */
static bool tp_wrfsbase;

static void load_tp(char *tp)
{
    if (tp_wrfsbase)
        __asm__ volatile("wrfsbase %0" : : "r"(tp) : "memory");
    else
        green__syscall(SYS_arch_prctl, ARCH_SET_FS, (long)tp);
}

#if !defined(GREEN_TSAN)           /* address mode is refused under TSan */
/* Whether load_tp can use wrfsbase: the kernel enabled the instruction
 * for user space (HWCAP2_FSGSBASE), and no valgrind, whose CPU does not
 * decode it. */
static bool wrfsbase_usable(void)
{
    if (!(getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE))
        return false;
#ifdef GREEN_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return false;
#endif
    return true;
}
#endif
#else
static char *read_tp(void) { return NULL; }
static void load_tp(char *tp) { (void)tp; }
#endif

/* The static TLS area's shape, from glibc: whether address mode can run.
 * Called once, by the first ctx. */
static bool tp_layout(void)
{
#if defined(__x86_64__) && !defined(GREEN_TSAN)
    void (*info)(size_t *, size_t *);
    *(void **)&info = dlvsym(RTLD_DEFAULT, "_dl_get_tls_static_info", "GLIBC_PRIVATE");
    const uint32_t *tcb = dlvsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread", "GLIBC_PRIVATE");
    if (!info || !tcb) {
        green__log("GREEN_TLS=address: this C library does not say how its "
                   "static TLS area is laid out; using GREEN_TLS=1");
        return false;
    }
    size_t size = 0, align = 0;
    info(&size, &align);
    if (!align || *tcb >= size || (size - *tcb) % align) {
        green__log("GREEN_TLS=address: unexpected static TLS area (%zu bytes, "
                   "TCB %u, align %zu); using GREEN_TLS=1", size, *tcb, align);
        return false;
    }
    tp_below = size - *tcb;
    tp_tcb = *tcb;
    tp_wrfsbase = wrfsbase_usable();
    green__debug("GREEN_TLS=address: thread pointers loaded with %s",
                 tp_wrfsbase ? "wrfsbase" : "arch_prctl");
    tp_align = align < 64 ? 64 : align;
    return true;
#else
    green__log("GREEN_TLS=address needs x86-64 and no ThreadSanitizer; using "
               "GREEN_TLS=1");
    return false;
#endif
}

static bool kept_modid(const struct green__ctx *c, size_t modid)
{
    for (size_t k = 0; k < c->tls_sync_n; k++)
        if (c->tls_sync[k].off == 0 && c->tls_sync[k].modid == modid)
            return true;
    return false;
}

static bool is_static(const struct green__ctx *c, const char *block)
{
    return in_static_area(c->tls_os_tp, block, 1);
}

/* t's own thread pointer: the OS thread's static area and TCB copied,
 * the program's static blocks from their images, its own vector with
 * the static slots pointing into the copy and the dynamic ones
 * unallocated (glibc allocates them for t on first use). */
static int tp_make(struct green__ctx *c, struct green_thread *t)
{
    char *os = c->tls_os_tp;
    void *mem;
    if (posix_memalign(&mem, tp_align, tp_below + tp_tcb))
        return ENOMEM;
    char *tp = (char *)mem + tp_below;
    memcpy(mem, os - tp_below, tp_below + tp_tcb);
    dtv_slot *od = *(dtv_slot **)(os + sizeof(void *));
    size_t n = od[-1].counter;
    dtv_slot *nd = malloc((n + 2) * sizeof *nd);
    if (!nd) {
        free(mem);
        return ENOMEM;
    }
    memcpy(nd, od - 1, (n + 2) * sizeof *nd);
    nd++;
    for (size_t k = 1; k <= n; k++) {
        char *v = nd[k].p.val;
        if (v == DTV_UNALLOCATED)
            continue;
        if (is_static(c, v)) {
            nd[k].p.val = tp - (os - v);
            nd[k].p.to_free = NULL;
        } else if (!kept_modid(c, k)) {
            nd[k].p.val = DTV_UNALLOCATED;
            nd[k].p.to_free = NULL;
        }
    }
    /* header.tcb (what %fs:0 reads, the base of every TLS address) and
     * header.dtv are t's; header.self stays the OS thread's struct
     * pthread, which glibc takes as the thread's identity (its stdio
     * locks' owner, its pthread_self), as with GREEN_TLS=1. */
    ((void **)tp)[0] = tp;
    ((void **)tp)[1] = nd;
    for (size_t k = 0; k < c->tls_n; k++)
        if (is_static(c, c->tls_mods[k].block))
            load_image(&c->tls_mods[k], tp - (os - c->tls_mods[k].block));
    t->tls_tp = tp;
    t->tls_tp_mem = mem;
    return 0;
}

/* Load tp: what stays the OS thread's follows it. */
static void tp_enter(struct green__ctx *c, char *tp)
{
    char *cur = c->tls_cur_tp;
    if (tp == cur)
        return;
    for (size_t k = 0; k < c->tls_sync_n; k++) {
        const struct green__tls_sync *y = &c->tls_sync[k];
        if (y->off)
            memcpy(tp - y->off, cur - y->off, y->size);
    }
    /* The kernel keeps the current CPU in the OS thread's rseq area;
     * sched_getcpu reads it from the thread pointer's. */
    if (&__rseq_size && __rseq_size && tp != c->tls_os_tp)
        memcpy(tp + __rseq_offset, c->tls_os_tp + __rseq_offset, 8);
    load_tp(tp);
    c->tls_cur_tp = tp;
}

static void tp_free(struct green_thread *t)
{
    dtv_slot *d = ((dtv_slot **)t->tls_tp)[1];
    for (size_t k = 1; k <= d[-1].counter; k++)
        free(d[k].p.to_free);
    free(d - 1);
    free(t->tls_tp_mem);
    t->tls_tp = NULL;
    t->tls_tp_mem = NULL;
}

/* A rescan in address mode: blocks of static modules new since the last
 * give every thread pointer but the OS thread's their images (glibc
 * initialised the OS thread's own). */
static bool install_addr(struct green__ctx *c, struct scan *s)
{
    for (size_t j = 0; j < s->n; j++) {
        const struct green__tls_mod *m = &s->mods[j];
        if (!is_static(c, m->block) || old_mod(c, m))
            continue;
        for (struct green_thread *t = c->all; t; t = t->all_next)
            if (t->tls_tp_mem && t->state != GREEN_DONE)
                load_image(m, t->tls_tp - (c->tls_os_tp - m->block));
    }
    free(c->tls_mods);
    c->tls_mods = s->mods;
    free(c->tls_sync);
    c->tls_sync = s->sync;
    c->tls_sync_n = s->sync_n;
    c->tls_adds = s->adds;
    c->tls_subs = s->subs;
    c->tls_n = s->n;
    return true;
}

/* Address mode's checks, made once with the first ctx (the process's
 * main thread, before any other hub exists): glibc's layout is the one
 * expected, and no loaded allocator keeps its per-thread data linked by
 * address (jemalloc: its thread's data would live in one thread
 * pointer's copy while other threads read the OS thread's). */
static int no_linked_alloc(struct dl_phdr_info *i, size_t size, void *arg)
{
    (void)size;
    const char *name = i->dlpi_tls_modid && i->dlpi_name
        ? name_in(i->dlpi_name, linked_alloc_names,
                  sizeof linked_alloc_names / sizeof *linked_alloc_names)
        : NULL;
    *(const char **)arg = name;
    return name != NULL;
}

static bool addr_usable(void)
{
    if (!tp_layout())
        return false;
    const char *alloc = NULL;
    dl_iterate_phdr(no_linked_alloc, &alloc);
    if (alloc) {
        green__log("GREEN_TLS=address: %s keeps per-thread data linked by "
                   "address; using GREEN_TLS=1", alloc);
        return false;
    }
    /* Every block dl_iterate_phdr names is where glibc's vector says. */
    char *tp = read_tp();
    dtv_slot *d = ((dtv_slot **)tp)[1];
    struct scan s = { .os_tp = tp };
    bool ok = scan_modules(&s);
    for (size_t k = 0; ok && k < s.n; k++)
        ok = !s.mods[k].block || (s.mods[k].modid <= d[-1].counter &&
                                  d[s.mods[k].modid].p.val == s.mods[k].block);
    for (size_t k = 0; ok && k < s.sync_n; k++)
        ok = s.sync[k].off == 0 || (s.sync[k].modid <= d[-1].counter &&
                                    d[s.sync[k].modid].p.val == tp - s.sync[k].off);
    free(s.mods);
    free(s.sync);
    if (!ok)
        green__log("GREEN_TLS=address: glibc's thread vector is not laid out "
                   "as expected; using GREEN_TLS=1");
    return ok;
}

#if defined(__x86_64__)
long green__errno_off;
#endif

void green__locale_install(struct green__ctx *c, struct green_thread *next)
{
    green__real.uselocale(next->locale ? (locale_t)next->locale : LC_GLOBAL_LOCALE);
    c->locale_now = next->locale;
}

void green__locale_used(struct green_thread *t, void *loc)
{
    struct green__ctx *c = t->ctx;
    void *mine = loc == (void *)LC_GLOBAL_LOCALE ? NULL : loc;
    t->locale = mine;
    c->locale_now = mine;
    if (mine)
        c->locale_turns = true;
}

void green__tls_ctx_init(struct green__ctx *c)
{
    /* The OS thread's first thread keeps the locale it set before libgreen
     * started; every other thread starts in the global one. */
    locale_t l = green__real.uselocale((locale_t)0);
    if (l && l != LC_GLOBAL_LOCALE && c->current) {
        c->current->locale = l;
        c->locale_now = l;
        c->locale_turns = true;
    }
#if defined(__x86_64__)
    /* The same in every thread: errno is in libc's static block. Each
     * ctx stores it (the first before any switch of its own), while
     * other hubs' switches read it. */
    __atomic_store_n(&green__errno_off, (long)((char *)&errno - read_tp()),
                     __ATOMIC_RELAXED);
#endif
    if (!green__tls_on)
        return;
    if (green__tls_addr) {
        static bool checked;
        if (!checked) {
            checked = true;
            green__tls_addr = addr_usable();
        }
    }
    if (green__tls_addr) {
        c->tls_os_tp = c->tls_cur_tp = read_tp();
        /* The thread running now (main, for a new ctx) keeps the OS
         * thread's own thread pointer. */
        if (c->current && !c->current->is_hub) {
            c->current->tls_tp = c->tls_os_tp;
            c->tls_owner = c->current;
        }
        c->tls_turns = true;
    }
    if (!busy_enter(c))            /* during a dlclose: the first poll scans */
        rescan(c);                 /* main keeps the OS thread's contents */
    busy_leave(c);
}

/* ------------------------------------------------------ threads, swaps */

int green__tls_thread_init(struct green__ctx *c, struct green_thread *t)
{
    if (!green__tls_on || green__tls_addr || t->tls_cap >= c->tls_size)
        return 0;
    char *b = malloc(c->tls_size);
    if (!b)
        return ENOMEM;
    free(t->tls_buf);
    t->tls_buf = b;
    t->tls_cap = c->tls_size;
    t->tls_saved = false;
    return 0;
}

void green__tls_adopt(struct green__ctx *c, struct green_thread *t)
{
    if (!green__tls_on)
        return;
    green__tls_check(c);
    if (green__tls_addr) {
        if (!t->tls_tp && tp_make(c, t) != 0)
            green__panic("tls", __FILE__, __LINE__,
                         "out of memory for a green thread's thread pointer");
        return;
    }
    /* Placed by a spawner whose hub had a smaller layout. */
    if (green__tls_thread_init(c, t) != 0)
        green__panic("tls", __FILE__, __LINE__,
                     "out of memory for a green thread's thread-local storage");
}

/* The rare cases of a swap: no owner (it ended), a thread that never ran
 * and starts from the images, or a dlclose running (only modules with an
 * id below below are copied: see "dlclose and the other hubs"). */
static __attribute__((noinline)) void swap_slow(struct green__ctx *c,
                                                struct green_thread *next, size_t below)
{
    const struct green__tls_mod *m = c->tls_mods;
    size_t n = c->tls_n;
    struct green_thread *o = c->tls_owner;
    if (o) {
        for (size_t k = 0; k < n; k++)
            if (m[k].modid < below)
                memcpy(o->tls_buf + m[k].off, m[k].block, m[k].memsz);
        o->tls_saved = true;
    }
    for (size_t k = 0; k < n; k++) {
        if (m[k].modid >= below)
            continue;
        if (next->tls_saved)
            memcpy(m[k].block, next->tls_buf + m[k].off, m[k].memsz);
        else
            load_image(&m[k], m[k].block);
    }
}

void green__tls_futex_note(const void *w)
{
    static atomic_bool said;
    struct green__ctx *c = green__tls_ctx;
    if (!c || green__tls_addr || atomic_load_explicit(&said, memory_order_relaxed))
        return;
    for (size_t k = 0; k < c->tls_n; k++) {
        const struct green__tls_mod *m = &c->tls_mods[k];
        if ((uintptr_t)w - (uintptr_t)m->block < m->memsz) {
            if (!atomic_exchange(&said, true))
                green__log("a green thread waits on a futex word inside a __thread "
                           "variable (module %zu); with GREEN_TLS=1 every green "
                           "thread of a hub has it at the same address, so a wake "
                           "through that address may reach another thread: if the "
                           "program hangs, set GREEN_TLS=address (README, "
                           "\"Thread-local storage\")", m->modid);
            return;
        }
    }
}

void green__tls_swap(struct green__ctx *c, struct green_thread *next)
{
    if (green__tls_addr) {
        tp_enter(c, next->tls_tp && !next->is_hub ? next->tls_tp : c->tls_os_tp);
        c->tls_owner = next;
        return;
    }
    if (green__unlikely(busy_enter(c))) {
        swap_slow(c, next, first_dynamic);   /* no rescan until it ended */
        next->tls_saved = false;
        c->tls_owner = next;
        busy_leave(c);
        return;
    }
    if (green__unlikely(atomic_load_explicit(&unloads, memory_order_acquire) !=
                        c->tls_unloads)) {
        rescan(c);                 /* a module may be gone: not its block */
        if (!c->tls_n) {
            c->tls_owner = next;
            busy_leave(c);
            return;
        }
    }
    struct green_thread *o = c->tls_owner;
    if (green__likely(o && next->tls_saved)) {
        /* Both ran before: each module's block out to the owner's
         * buffer and in from next's, one module at a time. */
        char *ob = o->tls_buf, *nb = next->tls_buf;
        const struct green__tls_mod *m = c->tls_mods, *end = m + c->tls_n;
        for (; m < end; m++) {
            memcpy(ob + m->off, m->block, m->memsz);
            memcpy(m->block, nb + m->off, m->memsz);
        }
        o->tls_saved = true;
    } else {
        swap_slow(c, next, SIZE_MAX);
    }
    next->tls_saved = false;       /* the blocks hold it now */
    c->tls_owner = next;
    busy_leave(c);
}

void green__tls_release(struct green__ctx *c, struct green_thread *t)
{
    if (c->tls_owner == t)
        c->tls_owner = NULL;
    if (t->tls_tp_mem) {
        /* Off t's thread pointer before it goes: the rest of t's end and
         * the hub run on the OS thread's. */
        if (c->tls_cur_tp == t->tls_tp)
            tp_enter(c, c->tls_os_tp);
        tp_free(t);
    }
    t->tls_tp = NULL;
    free(t->tls_buf);
    t->tls_buf = NULL;
    t->tls_cap = 0;
    t->tls_saved = false;
}

/* ------------------------------------------------- C++ destructors */

/* Run t's thread_local destructors, newest first; a destructor may
 * register more (a thread_local first used by another's destructor). */
void green__tls_run_dtors(struct green_thread *t)
{
    struct green__tls_dtor *d;
    while ((d = t->tls_dtors)) {
        t->tls_dtors = d->next;
        d->fn(d->obj);
        if (d->pin) {
            green__tls_unload_begin();
            GREEN_REAL(dlclose)(d->pin);   /* may unload it now */
            green__tls_unload_end();
        }
        free(d);
    }
}

/* glibc's list of this OS thread runs it at exit(): the destructors of
 * the green thread calling exit, as natively those of the calling thread. */
static void at_os_exit(void *arg)
{
    struct green__ctx *c = arg;
    if (c == green__tls_ctx && c->current && !c->current->is_hub)
        green__tls_run_dtors(c->current);
}

/* A handle that keeps the library holding dso loaded, or NULL when dso is
 * in the executable (never unloaded). Cached per OS thread for the
 * executable, the common case. */
static void *pin(void *dso)
{
    static __thread void *exe_dso;
    if (!dso || dso == exe_dso)
        return NULL;
    Dl_info di;
    struct link_map *lm = NULL;
    if (!dladdr1(dso, &di, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
        return NULL;
    if (!lm->l_name || !lm->l_name[0]) {
        exe_dso = dso;
        return NULL;
    }
    return dlopen(lm->l_name, RTLD_LAZY | RTLD_NOLOAD);
}

int green__tls_atexit(void (*fn)(void *), void *obj, void *dso)
{
    struct green__ctx *c = green__tls_ctx;
    if (!c || !c->tls_turns || c->current->is_hub)
        return 0;
    if (!c->tls_exit_hooked) {
        /* dso: an address of libgreen's, which glibc then keeps loaded. */
        if (GREEN_REAL(__cxa_thread_atexit_impl)(at_os_exit, c, (void *)&at_os_exit) != 0)
            return -1;
        c->tls_exit_hooked = true;
    }
    struct green__tls_dtor *d = malloc(sizeof *d);
    if (!d)
        return -1;
    *d = (struct green__tls_dtor){ .next = c->current->tls_dtors, .fn = fn,
                                   .obj = obj, .pin = pin(dso) };
    c->current->tls_dtors = d;
    return 1;
}
