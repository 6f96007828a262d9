// prog_cxxsync.cc - C++20's waiting primitives in a plain C++ program
// that tests/test_preload_futex.c runs natively and under the shim:
// std::counting_semaphore, std::binary_semaphore, std::latch,
// std::barrier and std::atomic<T>::wait/notify. libstdc++ makes them wait
// with syscall(SYS_futex) (or a spin then the futex): without the shim's
// syscall() hook a green thread's acquire put the hub to sleep in the
// kernel and the process hung. Prints key=value lines: the counts each
// part must reach, the OS thread count while the threads are alive, and
// whether syscall() resolves into libgreen.
#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <latch>
#include <pthread.h>
#include <semaphore>
#include <thread>
#include <unistd.h>
#include <vector>
#include "../progutil.h"

int main()
{
    Dl_info di;
    out("hooked=%d", dladdr((void *)&syscall, &di) && di.dli_fname &&
                         strstr(di.dli_fname, "libgreen") != nullptr);

    // Ping-pong over two binary semaphores: each acquire finds the
    // semaphore empty and waits.
    constexpr int rounds = 20000;
    std::binary_semaphore ping(0), pong(0);
    int played = 0;
    std::thread peer([&] {
        for (int i = 0; i < rounds; i++) {
            ping.acquire();
            pong.release();
        }
    });
    for (int i = 0; i < rounds; i++) {
        ping.release();
        pong.acquire();
        played++;
    }
    peer.join();
    out("semaphore_rounds=%d", played);

    // A counting semaphore as a pool of 3 permits for 16 workers.
    std::counting_semaphore<3> pool(3);
    std::atomic<int> inside{0}, most{0}, done{0};
    std::vector<std::thread> ws;
    for (int i = 0; i < 16; i++)
        ws.emplace_back([&] {
            for (int k = 0; k < 200; k++) {
                pool.acquire();
                int n = ++inside;
                int m = most.load();
                while (n > m && !most.compare_exchange_weak(m, n))
                    ;
                std::this_thread::yield();
                --inside;
                pool.release();
            }
            ++done;
        });
    out("threads=%d", os_threads_of(0));
    for (auto &w : ws)
        w.join();
    out("pool_done=%d", done.load());
    out("pool_most_at_once_ok=%d", most.load() >= 1 && most.load() <= 3);

    // A latch: 8 threads arrive, main waits for all.
    std::latch arrived(8);
    std::atomic<int> after{0};
    std::vector<std::thread> ls;
    for (int i = 0; i < 8; i++)
        ls.emplace_back([&] {
            usleep(1000);
            arrived.count_down();
            ++after;
        });
    arrived.wait();
    for (auto &t : ls)
        t.join();
    out("latch_after=%d", after.load());

    // A barrier: 4 threads, 100 phases, the completion counts phases.
    std::atomic<int> phases{0};
    std::barrier sync(4, [&]() noexcept { ++phases; });
    std::vector<std::thread> bs;
    for (int i = 0; i < 4; i++)
        bs.emplace_back([&] {
            for (int p = 0; p < 100; p++)
                sync.arrive_and_wait();
        });
    for (auto &t : bs)
        t.join();
    out("barrier_phases=%d", phases.load());

    // atomic<int>::wait: a waiter sleeps until the value changes.
    std::atomic<int> flag{0};
    std::atomic<int> seen{0};
    std::thread w([&] {
        for (int v = 0; v < 1000; v++) {
            flag.wait(2 * v);            // until the main thread moves it to 2v+1
            flag.store(2 * v + 2);
            flag.notify_one();
        }
        seen = 1;
    });
    for (int v = 0; v < 1000; v++) {
        flag.store(2 * v + 1);
        flag.notify_one();
        flag.wait(2 * v + 1);
    }
    w.join();
    out("atomic_wait_rounds_ok=%d", seen.load() == 1 && flag.load() == 2000);
    return 0;
}
