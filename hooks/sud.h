/*
 * sud.h - raw system calls made cooperative with syscall user dispatch
 * (sud.c; the design and the figures: docs/syscall-dispatch.md).
 *
 * Under GREEN_SYSCALL_DISPATCH=1 every hub's OS thread asks the kernel
 * (prctl PR_SET_SYSCALL_USER_DISPATCH, Linux 5.11+) to trap the system
 * calls made from outside libc's text to SIGSYS; the handler runs the
 * blocking ones through the hooks (so they park) and the others as they
 * were asked. Everything that goes through libc, libgreen's own calls
 * included, is not trapped.
 */
#ifndef GREEN_HOOKS_SUD_H
#define GREEN_HOOKS_SUD_H

#include "hooks.h"
#include <stdint.h>

/* Install the SIGSYS handler, find libc's text and make every ctx made
 * from now on switch dispatch on for its OS thread (and the caller's, if
 * it already has one). 0, or -1 with errno: ENOSYS (the kernel has no
 * syscall user dispatch), ENOENT (libc's text not found). Once per
 * process; later calls return the first result. */
GREEN_HIDDEN int green__sud_setup(void);

/* Switch dispatch on (or off) for the calling OS thread. green__sud_on:
 * 0, or -1 with errno EINVAL/ENOSYS (no kernel support), ENOTSUP (under
 * valgrind, whose own system calls would trap). Unblocks SIGSYS in the
 * thread's kernel mask (a trap that finds it blocked kills the process;
 * hooks/signal.c keeps it out of the hub's mask while this is on). */
GREEN_HIDDEN int green__sud_on(void);
GREEN_HIDDEN void green__sud_off(void);
/* Is dispatch on for the calling OS thread? */
GREEN_HIDDEN bool green__sud_active(void);

/* What the handler does with one trapped call: nr and its six arguments
 * as the kernel got them, pc the address after the syscall instruction.
 * Returns the kernel's return value (-errno on failure). May switch (for
 * the blocking calls, on a green thread). Callable without a trap: the
 * benchmark measures it directly. */
GREEN_HIDDEN long green__sud_dispatch(long nr, const long a[6], uintptr_t pc);

/* Calls trapped so far in this process, and those that went to a hook
 * (tests and the benchmark). */
GREEN_HIDDEN unsigned long green__sud_traps(void);
GREEN_HIDDEN unsigned long green__sud_hooked(void);

#endif
