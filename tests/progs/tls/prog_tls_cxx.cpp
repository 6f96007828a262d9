/*
 * prog_tls_cxx.cpp - C++ thread_local objects and exceptions belong to
 * their thread: a plain C++ program (never linked to libgreen) run
 * natively and under the shim by tests/test_preload_tls.c. One mode per
 * run (argv[1]):
 *
 *   objects     40 threads each use two thread_local objects with
 *               constructors and destructors (First, then Second), write
 *               their index into them, wait at a barrier, sleep, and
 *               check it is still theirs. Each destructor records the
 *               value it finds and the order (Second before First, the
 *               reverse of construction). Prints constructed=, destroyed=
 *               (natively 80 each), mismatch= (threads that saw another's
 *               value), bad_dtor= (destructors that ran out of order or
 *               on another thread's object) and dtor_seen= (threads whose
 *               both objects were destroyed with their own index).
 *   exceptions  4 threads (two per hub with two hubs), 20 rounds each:
 *               throw, and inside the catch block sleep (the others
 *               throw and catch meanwhile), then check std::current_exception, rethrow
 *               with `throw;` and catch what was thrown by this thread,
 *               and check std::uncaught_exceptions() is 0. Prints
 *               mismatch= (rounds that saw another thread's exception).
 *
 *   dlclose     a thread uses a thread_local object of libtlsmod_cxx.so
 *               (dlopen'd), then waits while main dlcloses the library,
 *               then ends: the object's destructor, code of that library,
 *               must still be there and run. Prints lib_dtors=1.
 *
 * Every mode first prints green=1 when __cxa_thread_atexit_impl resolves
 * into libgreen (the shim's hook is taken), else green=0, and exits 0.
 */
#include <atomic>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <exception>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <time.h>
#include <unistd.h>

static void out(const char *key, long v)
{
    char b[128];
    int n = snprintf(b, sizeof b, "%s=%ld\n", key, v);
    if (write(1, b, (size_t)n) != n)
        _exit(99);
}

static void nap_us(long us)
{
    struct timespec ts = { 0, us * 1000 };
    nanosleep(&ts, nullptr);
}

/* ------------------------------------------------------------ objects */

#define NOBJ 40
static std::atomic<int> constructed{0}, destroyed{0}, mismatch{0}, bad_dtor{0};
static std::atomic<int> dtor_seen[NOBJ];
static pthread_barrier_t bar;

struct First {
    int v = -1;
    bool second_gone = false;
    First() { constructed++; }
    ~First()
    {
        destroyed++;
        if (!second_gone || v < 0 || v >= NOBJ)
            bad_dtor++;
        else
            dtor_seen[v]++;
    }
};

struct Second {
    int v = -1;
    Second() { constructed++; }
    ~Second();
};

thread_local First first;
thread_local Second second;

Second::~Second()
{
    destroyed++;
    /* Constructed after first, so destroyed before it, and first is
     * still this thread's. */
    if (v != first.v || v < 0 || v >= NOBJ)
        bad_dtor++;
    else
        dtor_seen[v]++;
    first.second_gone = true;
}

static void *obj_thread(void *arg)
{
    int id = (int)(long)arg;
    first.v = id;
    second.v = id;
    pthread_barrier_wait(&bar);
    nap_us(1000 + id * 20);
    if (first.v != id || second.v != id)
        mismatch++;
    return nullptr;
}

static int mode_objects()
{
    pthread_t t[NOBJ];
    pthread_barrier_init(&bar, nullptr, NOBJ);
    for (long i = 0; i < NOBJ; i++)
        if (pthread_create(&t[i], nullptr, obj_thread, (void *)i) != 0)
            return 1;
    for (int i = 0; i < NOBJ; i++)
        pthread_join(t[i], nullptr);
    int seen = 0;
    for (int i = 0; i < NOBJ; i++)
        seen += dtor_seen[i].load() == 2;
    out("constructed", constructed.load());
    out("destroyed", destroyed.load());
    out("mismatch", mismatch.load());
    out("bad_dtor", bad_dtor.load());
    out("dtor_seen", seen);
    return 0;
}

/* --------------------------------------------------------- exceptions */

#define ROUNDS 20
#define NEXC 4

static bool what_is(const std::exception_ptr &p, const std::string &want)
{
    try {
        std::rethrow_exception(p);
    } catch (const std::runtime_error &e) {
        return want == e.what();
    } catch (...) {
    }
    return false;
}

static void *exc_thread(void *arg)
{
    long id = (long)arg;
    for (int r = 0; r < ROUNDS; r++) {
        std::string mine = "thread " + std::to_string(id) + " round " + std::to_string(r);
        bool ok = false;
        try {
            throw std::runtime_error(mine);
        } catch (const std::runtime_error &e) {
            nap_us(300 + 200 * id);        /* the others throw meanwhile */
            ok = mine == e.what() && what_is(std::current_exception(), mine);
            try {
                throw;                     /* this thread's caught exception */
            } catch (const std::runtime_error &again) {
                nap_us(200);
                ok = ok && mine == again.what();
            }
        }
        ok = ok && std::uncaught_exceptions() == 0 && !std::current_exception();
        if (!ok)
            mismatch++;
    }
    return nullptr;
}

static int mode_exceptions()
{
    pthread_t t[NEXC];
    for (long i = 0; i < NEXC; i++)
        if (pthread_create(&t[i], nullptr, exc_thread, (void *)i) != 0)
            return 1;
    for (int i = 0; i < NEXC; i++)
        pthread_join(t[i], nullptr);
    out("mismatch", mismatch.load());
    return 0;
}

/* ------------------------------------------------------------ dlclose */

static std::atomic<int> lib_dtors{0};
static int gate[2];
static void (*lib_use)(std::atomic<int> *, int);

static void *lib_thread(void *)
{
    lib_use(&lib_dtors, 7);
    char c;
    if (read(gate[0], &c, 1) != 1)
        mismatch++;
    return nullptr;
}

static int mode_dlclose()
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
    if (n <= 0 || pipe(gate) != 0)
        return 1;
    path[n] = 0;
    strcpy(strrchr(path, '/') + 1, "libtlsmod_cxx.so");
    void *h = dlopen(path, RTLD_NOW);
    if (!h)
        return 1;
    *(void **)&lib_use = dlsym(h, "tlsmod_cxx_use");
    pthread_t t;
    if (!lib_use || pthread_create(&t, nullptr, lib_thread, nullptr) != 0)
        return 1;
    nap_us(20000);                    /* it used the object and waits */
    dlclose(h);                       /* its destructor keeps it loaded */
    if (write(gate[1], "x", 1) != 1)
        return 1;
    pthread_join(t, nullptr);
    out("lib_dtors", lib_dtors.load());
    return 0;
}

int main(int argc, char **argv)
{
    Dl_info di;
    void *p = dlsym(RTLD_DEFAULT, "__cxa_thread_atexit_impl");
    out("green", p && dladdr(p, &di) && di.dli_fname && strstr(di.dli_fname, "libgreen"));
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "objects"))
        return mode_objects();
    if (!strcmp(m, "exceptions"))
        return mode_exceptions();
    if (!strcmp(m, "dlclose"))
        return mode_dlclose();
    printf("unknown mode %s\n", m);
    return 2;
}
