// handoff.go - Go's numbers beside bench/bench_hubs.c: wake-up latency and
// contended mutex hand-off between two goroutines, run with GOMAXPROCS=2
// (two Ps, as libgreen's two hubs on this 2-core machine).
//
//	go run handoff.go [-scale F] [-reps N]
//
// Prints name=value lines, ns per operation, each the median of -reps runs
// (default 5), the kinds alternating:
//
//	go_chan_pingpong_ns         one round trip over two unbuffered channels
//	                            (A sends on ping and receives on pong, B the
//	                            reverse). Go's scheduler may run both on one
//	                            P (the woken goroutine goes to the waker's
//	                            runnext), so this is its natural case.
//	go_chan_pingpong_locked_ns  the same with each goroutine locked to its
//	                            own OS thread (runtime.LockOSThread): every
//	                            wake-up crosses OS threads, as a cross-hub
//	                            green_sem wake-up does.
//	go_mutex_ns                 one sync.Mutex Lock/Unlock pair (counter++
//	                            inside), both goroutines in a loop at once;
//	                            total time over all pairs.
//
// Both goroutines wait at a start line before the clock starts, as in
// bench_hubs.c. The program exits 1 if a counter update was lost.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// pair runs a and b in two goroutines, both past a start line, and returns
// the time from the first start to the last end.
func pair(a, b func()) time.Duration {
	var ready int32
	var wg sync.WaitGroup
	var t0, t1 [2]time.Time
	for i, fn := range []func(){a, b} {
		wg.Add(1)
		go func(i int, fn func()) {
			defer wg.Done()
			atomic.AddInt32(&ready, 1)
			for atomic.LoadInt32(&ready) < 2 {
				runtime.Gosched()
			}
			t0[i] = time.Now()
			fn()
			t1[i] = time.Now()
		}(i, fn)
	}
	wg.Wait()
	start, end := t0[0], t1[0]
	if t0[1].Before(start) {
		start = t0[1]
	}
	if t1[1].After(end) {
		end = t1[1]
	}
	return end.Sub(start)
}

func pingpong(rounds int, locked bool) float64 {
	ping, pong := make(chan struct{}), make(chan struct{})
	lock := func() {
		if locked {
			runtime.LockOSThread()
		}
	}
	unlock := func() {
		if locked {
			runtime.UnlockOSThread()
		}
	}
	d := pair(func() {
		lock()
		defer unlock()
		for i := 0; i < rounds; i++ {
			ping <- struct{}{}
			<-pong
		}
	}, func() {
		lock()
		defer unlock()
		for i := 0; i < rounds; i++ {
			<-ping
			pong <- struct{}{}
		}
	})
	return float64(d.Nanoseconds()) / float64(rounds)
}

func mutex(pairs int) float64 {
	var mu sync.Mutex
	counter := 0
	loop := func() {
		for i := 0; i < pairs; i++ {
			mu.Lock()
			counter++
			mu.Unlock()
		}
	}
	d := pair(loop, loop)
	if counter != 2*pairs {
		fmt.Fprintf(os.Stderr, "handoff: lost updates (%d of %d)\n", counter, 2*pairs)
		os.Exit(1)
	}
	return float64(d.Nanoseconds()) / float64(2*pairs)
}

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func main() {
	scale := flag.Float64("scale", 1, "scales every iteration count")
	reps := flag.Int("reps", 5, "runs per figure; the median is printed")
	flag.Parse()
	if *reps < 1 {
		*reps = 1
	}
	iters := func(n int) int {
		if r := int(float64(n) * *scale); r > 0 {
			return r
		}
		return 1
	}
	rounds, pairs := iters(50000), iters(500000)
	var pp, ppl, mu []float64
	for r := 0; r < *reps; r++ {
		pp = append(pp, pingpong(rounds, false))
		ppl = append(ppl, pingpong(rounds, true))
		mu = append(mu, mutex(pairs))
	}
	fmt.Printf("gomaxprocs=%d\n", runtime.GOMAXPROCS(0))
	fmt.Printf("go_chan_pingpong_ns=%.2f\n", median(pp))
	fmt.Printf("go_chan_pingpong_locked_ns=%.2f\n", median(ppl))
	fmt.Printf("go_mutex_ns=%.2f\n", median(mu))
}
