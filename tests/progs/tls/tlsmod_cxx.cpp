/*
 * tlsmod_cxx.cpp - a C++ shared library with a thread_local object whose
 * destructor is its own code: prog_tls_cxx dlopens it, uses the object in
 * a thread and dlcloses the library before that thread ends. Natively
 * glibc keeps the library loaded until the destructor ran; under the shim
 * libgreen must too.
 */
#include <atomic>

static std::atomic<int> *destroyed;

struct Held {
    int v = 0;
    ~Held()
    {
        if (destroyed)
            (*destroyed)++;
    }
};

static thread_local Held held;

extern "C" void tlsmod_cxx_use(std::atomic<int> *count, int v)
{
    destroyed = count;
    held.v = v;
}
