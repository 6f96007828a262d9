/*
 * bench_stdio - glibc's own streams over a pipe (hooks/io_stdio_glibc.c
 * under the shim). A plain pthreads program, run natively and under the
 * shim by run_benchmarks.sh. Reads: a writer thread fills a pipe on
 * descriptor 0 with numbered lines ("%ld\n"), the main thread reads them
 * back with one function; writes: the main thread writes the lines to
 * glibc's stream over a pipe (fopen of /proc/self/fd/N: fully buffered),
 * a thread drains it. CPU ns per line:
 *
 *   fgets_ns    fgets(buf, 64, stdin)
 *   getline_ns  getline
 *   getc_ns     getc to the end of each line (about 7 calls per line)
 *   scanf_ns    scanf("%ld")
 *   fprintf_ns  fprintf(f, "%ld\n")
 *   fputs_ns    fputs of the line
 *
 * The writer thread makes the main thread a green thread under the shim
 * (a program with no thread never starts a hub). `--only=KERNEL N` runs
 * one kernel for callgrind.
 */
#define _GNU_SOURCE
#include "bench.h"
#include <pthread.h>
#include <unistd.h>

static long lines;
static int wr;

static void *writer(void *arg)
{
    (void)arg;
    char buf[4096];
    size_t used = 0;
    for (long i = 0; i < lines; i++) {
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%ld\n", 1000000 + i);
        if (used > sizeof buf - 32 || i == lines - 1) {
            if (write(wr, buf, used) != (ssize_t)used)
                break;
            used = 0;
        }
    }
    close(wr);
    return NULL;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int drain;

static void *drainer(void *arg)
{
    (void)arg;
    char buf[4096];
    while (read(drain, buf, sizeof buf) > 0)
        ;
    return NULL;
}

/* Write n lines with kernel k; CPU ns per line. */
static double run_out(const char *k, long n)
{
    int p[2];
    if (pipe(p) != 0)
        exit(1);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[1]);
    FILE *f = fopen(path, "w");
    close(p[1]);
    drain = p[0];
    pthread_t t;
    pthread_create(&t, NULL, drainer, NULL);
    double t0 = cpu_now();
    char line[32];
    for (long i = 0; i < n; i++) {
        if (strcmp(k, "fprintf") == 0) {
            fprintf(f, "%ld\n", 1000000 + i);
        } else {
            snprintf(line, sizeof line, "%ld\n", 1000000 + i);
            fputs(line, f);
        }
    }
    fclose(f);
    double ns = (cpu_now() - t0) / (double)n;
    pthread_join(t, NULL);
    close(p[0]);
    return ns;
}

/* Read n lines with kernel k; CPU ns per line. */
static double run(const char *k, long n)
{
    if (strcmp(k, "fprintf") == 0 || strcmp(k, "fputs") == 0)
        return run_out(k, n);
    int p[2];
    if (pipe(p) != 0 || dup2(p[0], 0) != 0)
        exit(1);
    close(p[0]);
    wr = p[1];
    lines = n;
    clearerr(stdin);
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    double t0 = cpu_now();
    long got = 0, v;
    char buf[64], *line = NULL;
    size_t cap = 0;
    if (strcmp(k, "fgets") == 0) {
        while (fgets(buf, sizeof buf, stdin))
            got++;
    } else if (strcmp(k, "getline") == 0) {
        while (getline(&line, &cap, stdin) > 0)
            got++;
    } else if (strcmp(k, "getc") == 0) {
        int c;
        while ((c = getc(stdin)) != EOF)
            got += c == '\n';
    } else {
        while (scanf("%ld", &v) == 1)
            got++;
    }
    double ns = (cpu_now() - t0) / (double)n;
    pthread_join(t, NULL);
    free(line);
    if (got != n) {
        fprintf(stderr, "bench_stdio: %s read %ld lines of %ld\n", k, got, n);
        exit(1);
    }
    return ns;
}

int main(int argc, char **argv)
{
    long on;
    const char *only = bench_only(argc, argv, &on);
    if (only) {
        run(only, on);
        return 0;
    }
    long n = bench_iters(argc, argv, 500000);
    static const char *const k[] = { "fgets", "getline", "getc", "scanf", "fprintf", "fputs" };
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s_ns", k[i]);
        bench_report(name, BENCH_BEST(3, run(k[i], n)));
    }
    return 0;
}
