/*
 * test_preload_programs.c - real programs nobody here wrote, under the
 * shim, give the same bytes as without it.
 *
 *  - curl and wget (Debian's binaries) preloaded with $GREEN_LIB fetch
 *    files of 1 byte, 100 KiB and 5 MiB (random) from a native server;
 *    the output must equal the file and the native client's output.
 *  - The demo's legacy_http (a thread-per-connection daemon, built here
 *    but never linked to libgreen) preloaded serves the same files with
 *    sendfile to native curl and wget while 50 other connections hold a
 *    thread each; its OS thread count must stay 1-2 meanwhile (natively it
 *    is 51 or more, checked as the control).
 *
 * Proof that the hooks were taken, before any comparison: curl's resolver
 * thread makes curl's main thread green, so while it waits on a server
 * that answers late, its descriptors include libev's epoll instance
 * (natively, curl has none). wget is single-threaded: its main thread is
 * never adopted by a hub, so its calls enter libgreen's exports and pass
 * straight through (by design: a lone OS thread blocking costs nothing);
 * the proof there is the dynamic linker's own record (LD_DEBUG=bindings)
 * that wget's select and read bind to libgreen.so, plus libgreen.so in the
 * running process's maps.
 *
 * Skips: without curl or wget (the client-side tests, saying which), and
 * for the preloaded clients in the sanitizer build (GREEN_SANITIZED: the
 * uninstrumented binaries cannot load the instrumented library). The
 * server-side test runs there too: legacy_http is instrumented as well.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "hubs.h"
#include "progs/progutil.h"

#define HELD_CONNS 50          /* connections holding a server thread each */

static const struct { const char *name; size_t size; } files[] = {
    { "one.bin", 1 }, { "k100.bin", 100 * 1024 }, { "m5.bin", 5 * 1024 * 1024 },
};
#define NFILES (sizeof files / sizeof *files)

static char dir[64];           /* the files served, and the clients' output */
static pid_t servers[4];       /* servers running, killed by the fini if a
                                  failed assertion left them behind (they
                                  would hold meson's output pipe open) */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ fixtures */

static void write_file(const char *name, size_t size, unsigned seed)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot create %s: %s", path, strerror(errno));
    uint64_t x = 0x9e3779b97f4a7c15ull ^ seed;
    for (size_t k = 0; k < size; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;   /* xorshift64 */
        fputc((int)(x >> 56), f);
    }
    cr_assert_eq(fclose(f), 0);
}

static void make_files(void)
{
    strcpy(dir, "/tmp/green-programs-XXXXXX");
    cr_assert(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    for (size_t k = 0; k < NFILES; k++)
        write_file(files[k].name, files[k].size, (unsigned)k + 1);
}

static void remove_files(void)
{
    for (size_t k = 0; k < sizeof servers / sizeof *servers; k++)
        if (servers[k] > 0) {
            kill(servers[k], SIGKILL);
            waitpid(servers[k], NULL, 0);
            servers[k] = 0;
        }
    if (!dir[0])
        return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
    dir[0] = 0;
}

/* The files are made by each test once it knows it runs (a skipped test
 * gets no fini from criterion). */
TestSuite(preload_programs, .fini = remove_files);

/* Whole file into a malloc'd buffer; *n gets its size. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    rewind(f);
    char *b = malloc((size_t)len + 1);
    cr_assert(b);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void assert_same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    cr_expect_eq(na, nb, "%s has %zu bytes, %s has %zu", a, na, b, nb);
    if (na == nb)
        cr_expect(memcmp(x, y, na) == 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

/* ------------------------------------------------------------ children */

static bool have_program(const char *name)
{
    char path[PATH_MAX];
    const char *p = getenv("PATH");
    if (!p)
        p = "/usr/bin:/bin";
    while (*p) {
        size_t n = strcspn(p, ":");
        snprintf(path, sizeof path, "%.*s/%s", (int)n, p, name);
        if (access(path, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

static bool sanitized(void)
{
    const char *s = getenv("GREEN_SANITIZED");
    return s && *s;
}

/* Start argv with LD_PRELOAD=$GREEN_LIB or without any LD_PRELOAD; its
 * stdout goes to a pipe (*out) or /dev/null (out NULL). ld_debug, if not
 * NULL, is an LD_DEBUG_OUTPUT prefix for the linker's bindings record. */
static pid_t spawn(char *const argv[], bool preload, int *out, const char *ld_debug)
{
    const char *lib = getenv("GREEN_LIB");
    cr_assert(lib, "GREEN_LIB must be set (run through meson test)");
    int p[2] = { -1, -1 };
    if (out)
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = out ? p[1] : open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        unsetenv("http_proxy");
        unsetenv("HTTP_PROXY");
        unsetenv("no_proxy");
        if (preload)
            setenv("LD_PRELOAD", lib, 1);
        else
            unsetenv("LD_PRELOAD");
        if (ld_debug) {
            setenv("LD_DEBUG", "bindings", 1);
            setenv("LD_DEBUG_OUTPUT", ld_debug, 1);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    if (out) {
        close(p[1]);
        *out = p[0];
    }
    return pid;
}

/* Exit status of pid (128 + signal), or -1 after killing it at timeout. */
static int finish(pid_t pid, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        nap_ms(5);
    }
}

/* ------------------------------------------------------------ servers */

struct server {
    pid_t pid;
    int out;                   /* its stdout */
    int port;
};

static const char *legacy_http_path(void)
{
    static char path[PATH_MAX];
    const char *d = getenv("GREEN_DEMO_DIR");
    const char *progs = getenv("GREEN_PROGS");
    if (d && *d)
        snprintf(path, sizeof path, "%s/legacy_http", d);
    else if (progs)
        snprintf(path, sizeof path, "%s/../../demo/legacy_http", progs);
    else
        return NULL;
    return access(path, X_OK) == 0 ? path : NULL;
}

/* Start legacy_http --static dir on a free port; latency_us > 0 makes it
 * answer that late. */
static void server_start(struct server *s, bool preload, int latency_us)
{
    const char *path = legacy_http_path();
    cr_assert(path, "legacy_http not found");
    char lat[32];
    snprintf(lat, sizeof lat, "%d", latency_us);
    char *argv[] = { (char *)path, "--port", "0", "--static", dir,
                     "--latency-us", lat, NULL };
    s->pid = spawn(argv, preload, &s->out, NULL);
    for (size_t k = 0; k < sizeof servers / sizeof *servers; k++)
        if (servers[k] <= 0) {
            servers[k] = s->pid;
            break;
        }
    char line[256];
    size_t len = 0;
    long long end = now_ms() + 10000;
    s->port = 0;
    while (!s->port && now_ms() < end && len < sizeof line - 1) {
        struct pollfd pf = { .fd = s->out, .events = POLLIN };
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = read(s->out, line + len, sizeof line - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        line[len] = 0;
        if (strchr(line, '\n'))
            sscanf(line, "listening on %d", &s->port);
    }
    cr_assert_gt(s->port, 0, "legacy_http did not say \"listening on PORT\"");
}

static void server_stop(struct server *s)
{
    for (size_t k = 0; k < sizeof servers / sizeof *servers; k++)
        if (servers[k] == s->pid)
            servers[k] = 0;
    kill(s->pid, SIGTERM);
    if (finish(s->pid, 5000) < 0)
        cr_log_warn("legacy_http had to be killed");
    close(s->out);
}

/* ------------------------------------------------------------ /proc */

/* How many of pid's descriptors link to a name starting with prefix. */
static int fds_named(pid_t pid, const char *prefix)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char link[PATH_MAX + 64], target[256];
        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        ssize_t r = readlink(link, target, sizeof target - 1);
        if (r <= 0)
            continue;
        target[r] = 0;
        n += !strncmp(target, prefix, strlen(prefix));
    }
    closedir(d);
    return n;
}

static bool maps_libgreen(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "libgreen.so") != NULL;
    if (f)
        fclose(f);
    return found;
}

/* ------------------------------------------------------------ clients */

/* argv of a client fetching url into out. */
static void client_argv(const char *client, const char *url, const char *out,
                        char *argv[16])
{
    int k = 0;
    argv[k++] = (char *)client;
    if (!strcmp(client, "curl")) {
        argv[k++] = "-q";                /* no ~/.curlrc */
        argv[k++] = "-sS";
        argv[k++] = "--fail";
        argv[k++] = "--noproxy";
        argv[k++] = "*";
    } else {
        argv[k++] = "-q";
        argv[k++] = "--no-config";
        argv[k++] = "--no-proxy";
        argv[k++] = "--tries=1";
    }
    argv[k++] = !strcmp(client, "curl") ? "-o" : "-O";
    argv[k++] = (char *)out;
    argv[k++] = (char *)url;
    argv[k] = NULL;
}

/* Does the linker's record (files prefix.PID) bind some object's sym to
 * libgreen.so? */
static bool bound_to_libgreen(const char *prefix, const char *sym)
{
    char path[PATH_MAX + 256], line[1024], want[64];
    snprintf(want, sizeof want, "normal symbol `%s'", sym);
    char dname[PATH_MAX];
    snprintf(dname, sizeof dname, "%s", prefix);
    char *slash = strrchr(dname, '/');
    cr_assert(slash);
    *slash = 0;
    const char *base = slash + 1;
    DIR *d = opendir(dname);
    cr_assert(d);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (strncmp(e->d_name, base, strlen(base)))
            continue;
        snprintf(path, sizeof path, "%s/%s", dname, e->d_name);
        FILE *f = fopen(path, "r");
        while (f && !found && fgets(line, sizeof line, f))
            found = strstr(line, "binding file ") && strstr(line, "libgreen.so") &&
                    strstr(line, want);
        if (f)
            fclose(f);
    }
    closedir(d);
    return found;
}

/* The call every fetch of client makes: libcurl's recv, wget's read. */
static const char *data_call(const char *client)
{
    return !strcmp(client, "curl") ? "recv" : "read";
}

/* Fetch /name from port with client into dir/out; returns its status. A
 * preloaded run is checked to have bound its data call to libgreen.so. */
static int fetch(const char *client, bool preload, int port, const char *name,
                 const char *out)
{
    char url[128], path[PATH_MAX], *argv[16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", port, name);
    snprintf(path, sizeof path, "%s/%s", dir, out);
    client_argv(client, url, path, argv);
    char prefix[PATH_MAX];
    snprintf(prefix, sizeof prefix, "%s/ld-%s", dir, out);
    int st = finish(spawn(argv, preload, NULL, preload ? prefix : NULL), 120000);
    if (preload)
        cr_assert(bound_to_libgreen(prefix, data_call(client)),
                  "%s's %s did not bind to libgreen.so", client, data_call(client));
    return st;
}

/* Fetch every file natively and preloaded from port; both must equal the
 * file served. */
static void fetch_all_both_ways(const char *client, int port)
{
    for (size_t k = 0; k < NFILES; k++) {
        char nat[64], grn[64], a[PATH_MAX], b[PATH_MAX], src[PATH_MAX];
        snprintf(nat, sizeof nat, "%s-native-%s", client, files[k].name);
        snprintf(grn, sizeof grn, "%s-green-%s", client, files[k].name);
        cr_assert_eq(fetch(client, false, port, files[k].name, nat), 0,
                     "native %s failed on %s", client, files[k].name);
        cr_assert_eq(fetch(client, true, port, files[k].name, grn), 0,
                     "%s under the shim failed on %s", client, files[k].name);
        snprintf(a, sizeof a, "%s/%s", dir, nat);
        snprintf(b, sizeof b, "%s/%s", dir, grn);
        snprintf(src, sizeof src, "%s/%s", dir, files[k].name);
        assert_same_file(src, a);
        assert_same_file(a, b);
    }
}

/* Start client on a server that answers after 1.5 s and, while it waits,
 * look at it: libgreen.so mapped? libev's epoll among its descriptors? */
static void look_while_waiting(const char *client, bool preload, int port,
                               const char *ld_debug, bool *mapped, int *epolls)
{
    char url[128], path[PATH_MAX], *argv[16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", port, files[0].name);
    snprintf(path, sizeof path, "%s/slow-%s-%d", dir, client, preload);
    client_argv(client, url, path, argv);
    pid_t pid = spawn(argv, preload, NULL, ld_debug);
    nap_ms(700);                          /* well inside the 1.5 s wait */
    *mapped = maps_libgreen(pid);
    *epolls = fds_named(pid, "anon_inode:[eventpoll]");
    cr_assert_eq(finish(pid, 60000), 0, "%s against the slow server failed", client);
}

static void skip_unless_client_runs(const char *client)
{
    if (!have_program(client))
        cr_skip_test("%s is not installed: real-program test not run", client);
    if (sanitized())
        cr_skip_test("sanitizer build: the uninstrumented %s cannot load the "
                     "instrumented libgreen.so (run in the plain build)", client);
    if (!legacy_http_path())
        cr_skip_test("demo/legacy_http is not built (-Ddemos=false): no server");
    make_files();
}

Test(preload_programs, curl_under_the_shim_is_green_and_fetches_the_same_bytes,
     .timeout = 300)
{
    skip_unless_client_runs("curl");
    struct server slow;
    server_start(&slow, false, 1500000);
    bool mapped;
    int epolls;
    char prefix[PATH_MAX];
    snprintf(prefix, sizeof prefix, "%s/ld-curl", dir);
    look_while_waiting("curl", true, slow.port, prefix, &mapped, &epolls);
    cr_assert(mapped, "libgreen.so is not mapped in the preloaded curl");
    cr_assert_geq(epolls, 1, "the preloaded curl waited without a hub (no epoll fd)");
    cr_assert(bound_to_libgreen(prefix, "recv"), "libcurl's recv is not libgreen's");
    cr_assert(bound_to_libgreen(prefix, "poll"), "libcurl's poll is not libgreen's");
    look_while_waiting("curl", false, slow.port, NULL, &mapped, &epolls);
    cr_assert(!mapped, "libgreen.so is mapped in the native curl");
    cr_assert_eq(epolls, 0, "the native curl has an epoll fd: the check proves nothing");
    server_stop(&slow);

    struct server s;
    server_start(&s, false, 0);
    fetch_all_both_ways("curl", s.port);
    server_stop(&s);
}

Test(preload_programs, wget_under_the_shim_calls_libgreen_and_fetches_the_same_bytes,
     .timeout = 300)
{
    skip_unless_client_runs("wget");
    struct server slow;
    server_start(&slow, false, 1500000);
    char prefix[PATH_MAX];
    snprintf(prefix, sizeof prefix, "%s/ld-wget", dir);
    bool mapped;
    int epolls;
    look_while_waiting("wget", true, slow.port, prefix, &mapped, &epolls);
    cr_assert(mapped, "libgreen.so is not mapped in the preloaded wget");
    cr_assert(bound_to_libgreen(prefix, "select"), "wget's select is not libgreen's");
    cr_assert(bound_to_libgreen(prefix, "read"), "wget's read is not libgreen's");
    look_while_waiting("wget", false, slow.port, NULL, &mapped, &epolls);
    cr_assert(!mapped, "libgreen.so is mapped in the native wget");
    server_stop(&slow);

    struct server s;
    server_start(&s, false, 0);
    fetch_all_both_ways("wget", s.port);
    server_stop(&s);
}

/* ------------------------------------------------------------ server side */

/* Open n connections to port, each with an unfinished request head: the
 * server gives each a thread blocked in read. */
static void hold_connections(int port, int *fds, int n)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    static const char head[] = "GET /one.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Connection: close\r\n";
    for (int k = 0; k < n; k++) {
        fds[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fds[k], 0);
        cr_assert_eq(connect(fds[k], (struct sockaddr *)&a, sizeof a), 0,
                     "connect: %s", strerror(errno));
        cr_assert_eq(write(fds[k], head, sizeof head - 1), (ssize_t)sizeof head - 1);
    }
}

/* Wait (bounded) until pid holds at least n sockets. */
static int wait_sockets(pid_t pid, int n)
{
    long long end = now_ms() + 10000;
    int have = 0;
    while ((have = fds_named(pid, "socket:")) < n && now_ms() < end)
        nap_ms(20);
    return have;
}

/* Finish the held requests; each must get the 1-byte file, then EOF. */
static void release_connections(int *fds, int n, const char *want_body, size_t want_len)
{
    for (int k = 0; k < n; k++)
        cr_assert_eq(write(fds[k], "\r\n", 2), 2);
    for (int k = 0; k < n; k++) {
        char buf[2048];
        size_t len = 0;
        long long end = now_ms() + 20000;
        while (len < sizeof buf - 1 && now_ms() < end) {
            struct pollfd pf = { .fd = fds[k], .events = POLLIN };
            if (poll(&pf, 1, 200) <= 0)
                continue;
            ssize_t r = read(fds[k], buf + len, sizeof buf - 1 - len);
            if (r <= 0)
                break;
            len += (size_t)r;
        }
        buf[len] = 0;
        cr_expect(!strncmp(buf, "HTTP/1.1 200", 12), "held connection %d got \"%.40s\"",
                  k, buf);
        const char *body = strstr(buf, "\r\n\r\n");
        cr_expect(body && (size_t)(buf + len - (body + 4)) == want_len &&
                  !memcmp(body + 4, want_body, want_len),
                  "held connection %d: wrong body", k);
        close(fds[k]);
    }
}

/* Serve with legacy_http (preloaded or not) while HELD_CONNS requests are
 * held open; returns the OS thread count seen meanwhile. Every file is
 * fetched by each installed client; outputs go to dir/<tag>-<client>-*. */
static int serve_while_held(bool preload, const char *tag, int *clients_run)
{
    struct server s;
    server_start(&s, preload, 0);
    if (preload)
        cr_assert(maps_libgreen(s.pid), "libgreen.so is not mapped in legacy_http");
    int fds[HELD_CONNS];
    hold_connections(s.port, fds, HELD_CONNS);
    cr_assert_geq(wait_sockets(s.pid, HELD_CONNS + 1), HELD_CONNS + 1,
                  "legacy_http did not accept the held connections");
    int threads = os_threads_of(s.pid);
    static const char *const clients[] = { "curl", "wget" };
    *clients_run = 0;
    for (size_t c = 0; c < 2; c++) {
        if (!have_program(clients[c]))
            continue;
        ++*clients_run;
        for (size_t k = 0; k < NFILES; k++) {
            char out[64];
            snprintf(out, sizeof out, "%s-%s-%s", tag, clients[c], files[k].name);
            cr_assert_eq(fetch(clients[c], false, s.port, files[k].name, out), 0,
                         "%s from the %s legacy_http failed on %s", clients[c], tag,
                         files[k].name);
        }
    }
    int after = os_threads_of(s.pid);
    if (after > threads)
        threads = after;
    char one[PATH_MAX];
    size_t n;
    snprintf(one, sizeof one, "%s/%s", dir, files[0].name);
    char *body = slurp(one, &n);
    release_connections(fds, HELD_CONNS, body, n);
    free(body);
    server_stop(&s);
    return threads;
}

Test(preload_programs, legacy_http_under_the_shim_serves_the_same_bytes_on_its_hubs_os_threads,
     .timeout = 300)
{
    if (!legacy_http_path())
        cr_skip_test("demo/legacy_http is not built (-Ddemos=false)");
    if (!have_program("curl") && !have_program("wget"))
        cr_skip_test("neither curl nor wget is installed: no client to fetch with");
    make_files();
    int clients;
    int green = serve_while_held(true, "green", &clients);
    cr_expect(green >= 1 && green <= test_hubs() + 1,
              "legacy_http under the shim ran %d OS threads (%d hubs) for %d connections",
              green, test_hubs(), HELD_CONNS);
    int native = serve_while_held(false, "native", &clients);
    cr_expect_gt(native, HELD_CONNS, "native legacy_http ran only %d OS threads: the "
                 "thread check proves nothing", native);
    static const char *const names[] = { "curl", "wget" };
    for (size_t c = 0; c < 2; c++) {
        if (!have_program(names[c]))
            continue;
        for (size_t k = 0; k < NFILES; k++) {
            char a[PATH_MAX], b[PATH_MAX], src[PATH_MAX];
            snprintf(src, sizeof src, "%s/%s", dir, files[k].name);
            snprintf(a, sizeof a, "%s/native-%s-%s", dir, names[c], files[k].name);
            snprintf(b, sizeof b, "%s/green-%s-%s", dir, names[c], files[k].name);
            assert_same_file(src, a);
            assert_same_file(a, b);
        }
    }
}
