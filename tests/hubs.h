/*
 * hubs.h - how many hubs a preloaded child of the tests runs, for the
 * tests that prove the shim by counting OS threads: GREEN_HUBS when the
 * environment sets it (tools/test runs the suite with 1 and with 2), else
 * the CPUs the test process may use, the shim's default. A cgroup quota
 * can only make the shim's default smaller, so a bound built on this
 * stays a bound. Static: each test file that includes it gets a copy.
 */
#ifndef GREEN_TESTS_HUBS_H
#define GREEN_TESTS_HUBS_H

#include <sched.h>
#include <stdlib.h>

static int test_hubs(void)
{
    const char *s = getenv("GREEN_HUBS");
    if (s && *s) {
        int n = atoi(s);
        if (n >= 1 && n <= 256)
            return n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n < 1 ? 1 : n > 256 ? 256 : n;
}

#endif
