// anchors.go - the Go reference figures for weft's micro benchmarks: the
// same work as bench/micro/bench_*.c written with sync.Mutex, sync.Cond and
// buffered channels, run with GOMAXPROCS=2 (two Ps for the two threads the
// C benchmarks use).
//
// It prints the lines bench/micro/bench.h describes:
//
//	result <key> go <value> <unit> <lower|higher>
//
// with the median of WEFT_BENCH_REPS runs (default 5), each sized by
// WEFT_BENCH_SCALE (default 1).  Go has no unbounded channel: the
// "unbounded" queue figures use a channel whose capacity holds every item,
// so a put never waits, which is what an unbounded queue gives.
//
// There is no wake-up latency figure: a goroutine woken by another is
// usually run on the waker's own P, which measures Go's scheduler, not a
// cross-thread wake-up.
//
// Build and run: go run bench/anchors/anchors.go (no module needed).
package main

import (
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func scale() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("WEFT_BENCH_SCALE"), 64); err == nil && v > 0 {
		return v
	}
	return 1
}

func reps() int {
	if v, err := strconv.Atoi(os.Getenv("WEFT_BENCH_REPS")); err == nil && v >= 1 {
		return v
	}
	return 5
}

func scaled(n int, min int) int {
	v := int(float64(n) * scale())
	if v < min {
		return min
	}
	return v
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func result(key string, value float64, unit, better string) {
	fmt.Printf("result %s go %.6g %s %s\n", key, value, unit, better)
}

func report(key string, v []float64, unit, better string) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	fmt.Printf("#   go         median %10.4g %-8s (min %.4g, max %.4g, %d runs)\n",
		median(v), unit, s[0], s[len(s)-1], len(v))
	result(key, median(v), unit, better)
}

// hist is the log-linear latency histogram of bench.h: 8 buckets per power
// of two, exact below 8 ns, and the exact maximum.
type hist struct {
	count uint64
	max   int64
	b     [8 * 48]uint64
}

func (h *hist) add(v int64) {
	i := int(v)
	if v < 0 {
		i = 0
	} else if v >= 8 {
		e := 63 - bits.LeadingZeros64(uint64(v))
		i = (e-2)*8 + int((v>>(e-3))&7)
		if i >= len(h.b) {
			i = len(h.b) - 1
		}
	}
	h.b[i]++
	h.count++
	if v > h.max {
		h.max = v
	}
}

func low(i int) int64 {
	if i < 8 {
		return int64(i)
	}
	e := i/8 + 2
	return (8 + int64(i&7)) << (e - 3)
}

func (h *hist) quantile(q float64) int64 {
	rank := uint64(q * float64(h.count))
	var seen uint64
	for i := range h.b {
		seen += h.b[i]
		if seen > rank {
			hi := h.max
			if i+1 < len(h.b) && low(i+1) < h.max {
				hi = low(i + 1)
			}
			return hi
		}
	}
	return h.max
}

// ---- lock ----------------------------------------------------------------

func lockUncontended() {
	n := scaled(10000000, 10000)
	var mu sync.Mutex
	v := make([]float64, reps())
	for r := range v {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			mu.Lock()
			mu.Unlock()
		}
		v[r] = float64(time.Since(t0).Nanoseconds()) / float64(n)
	}
	fmt.Printf("# uncontended Lock+Unlock, %d pairs per run\n", n)
	report("lock_uncontended", v, "ns/op", "lower")
}

func lockContended(timed bool, dur time.Duration) (mops, share float64, h [2]hist) {
	var mu sync.Mutex
	var counter int64
	var stop int32
	var ops [2]int64
	var start, end [2]time.Time
	var ready, wg sync.WaitGroup
	ready.Add(2)
	wg.Add(2)
	for t := 0; t < 2; t++ {
		go func(t int) {
			defer wg.Done()
			ready.Done()
			ready.Wait()
			start[t] = time.Now()
			n := int64(0)
			for atomic.LoadInt32(&stop) == 0 {
				for k := 0; k < 64; k++ {
					if timed {
						t0 := time.Now()
						mu.Lock()
						t1 := time.Now()
						counter++
						mu.Unlock()
						h[t].add(t1.Sub(t0).Nanoseconds())
					} else {
						mu.Lock()
						counter++
						mu.Unlock()
					}
				}
				n += 64
			}
			ops[t] = n
			end[t] = time.Now()
		}(t)
	}
	ready.Wait()
	time.Sleep(dur)
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	total := ops[0] + ops[1]
	if counter != total {
		panic("counter is wrong")
	}
	s, e := start[0], end[0]
	if start[1].Before(s) {
		s = start[1]
	}
	if end[1].After(e) {
		e = end[1]
	}
	lo := ops[0]
	if ops[1] < lo {
		lo = ops[1]
	}
	return float64(total) / float64(e.Sub(s).Nanoseconds()) * 1e3,
		100 * float64(lo) / float64(total), h
}

func lockContendedAll() {
	dur := time.Duration(200e6 * scale())
	if dur < 10*time.Millisecond {
		dur = 10 * time.Millisecond
	}
	n := reps()
	rate, share, trate, wmax := make([]float64, n), make([]float64, n),
		make([]float64, n), make([]float64, n)
	var all [2]hist
	for r := 0; r < n; r++ {
		rate[r], share[r], _ = lockContended(false, dur)
		var h [2]hist
		trate[r], _, h = lockContended(true, dur)
		for t := 0; t < 2; t++ {
			for i := range h[t].b {
				all[t].b[i] += h[t].b[i]
			}
			all[t].count += h[t].count
			if h[t].max > all[t].max {
				all[t].max = h[t].max
			}
			if m := float64(h[t].max) / 1e3; m > wmax[r] {
				wmax[r] = m
			}
		}
	}
	fmt.Printf("# contended counter, 2 goroutines, GOMAXPROCS=2, %v per run\n", dur)
	report("lock_2t_rate", rate, "Mops/s", "higher")
	report("lock_2t_share_min", share, "%", "higher")
	report("lock_2t_timed_rate", trate, "Mops/s", "higher")
	var p99, p999, mx float64
	for t := 0; t < 2; t++ {
		if q := float64(all[t].quantile(0.99)) / 1e3; q > p99 {
			p99 = q
		}
		if q := float64(all[t].quantile(0.999)) / 1e3; q > p999 {
			p999 = q
		}
		if m := float64(all[t].max) / 1e3; m > mx {
			mx = m
		}
	}
	fmt.Printf("#   go wait p99.9 %.2f / %.2f us, max %.1f / %.1f us\n",
		float64(all[0].quantile(0.999))/1e3, float64(all[1].quantile(0.999))/1e3,
		float64(all[0].max)/1e3, float64(all[1].max)/1e3)
	result("lock_2t_wait_p99", p99, "us", "lower")
	result("lock_2t_wait_p999", p999, "us", "lower")
	result("lock_2t_wait_max", mx, "us", "lower")
	report("lock_2t_wait_max_median", wmax, "us", "lower")
}

// ---- condition ping-pong -------------------------------------------------

func condPingPong() {
	n := scaled(10000, 100)
	v := make([]float64, reps())
	for r := range v {
		var mu sync.Mutex
		c := sync.NewCond(&mu)
		turn := 0
		var wg sync.WaitGroup
		wg.Add(2)
		t0 := time.Now()
		for p := 0; p < 2; p++ {
			go func(me int) {
				defer wg.Done()
				for i := 0; i < n; i++ {
					mu.Lock()
					for turn != me {
						c.Wait()
					}
					turn = 1 - me
					c.Signal()
					mu.Unlock()
				}
			}(p)
		}
		wg.Wait()
		v[r] = float64(n) / time.Since(t0).Seconds() / 1e3
	}
	fmt.Printf("# condition ping-pong (sync.Cond), %d round trips per run\n", n)
	report("cond_pingpong", v, "k-rt/s", "higher")
}

// ---- queues: buffered channels -------------------------------------------

func chanRun(np, nc, capacity, n int) float64 {
	ch := make(chan uintptr, capacity)
	per := n / np
	var wg sync.WaitGroup
	sums := make([]uint64, nc)
	t0 := time.Now()
	for p := 0; p < np; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			base := uintptr(p * per)
			for i := 1; i <= per; i++ {
				ch <- base + uintptr(i)
			}
		}(p)
	}
	for c := 0; c < nc; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var s uint64
			for i := 0; i < n/nc; i++ {
				s += uint64(<-ch)
			}
			sums[c] = s
		}(c)
	}
	wg.Wait()
	el := time.Since(t0)
	var got, want uint64
	for _, s := range sums {
		got += s
	}
	for p := 0; p < np; p++ {
		m, base := uint64(per), uint64(p*per)
		want += m*base + m*(m+1)/2
	}
	if got != want {
		panic("channel lost an item")
	}
	return float64(n) / float64(el.Nanoseconds()) * 1e3
}

func queues() {
	n := scaled(2000000, 1000) / 4 * 4
	cfg := []struct {
		np, nc, capacity int
		key              string
	}{
		{1, 1, 1024, "queue_1p1c_bounded"},
		{2, 2, 1024, "queue_2p2c_bounded"},
		{1, 1, n, "queue_1p1c_unbounded"},
		{2, 2, n, "queue_2p2c_unbounded"},
	}
	for _, c := range cfg {
		chanRun(c.np, c.nc, c.capacity, n/10)
		v := make([]float64, reps())
		for r := range v {
			v[r] = chanRun(c.np, c.nc, c.capacity, n)
		}
		fmt.Printf("# channel %dP/%dC, capacity %d, %d items per run\n",
			c.np, c.nc, c.capacity, n)
		report(c.key, v, "Mitems/s", "higher")
	}
}

func main() {
	runtime.GOMAXPROCS(2)
	lockUncontended()
	lockContendedAll()
	condPingPong()
	queues()
}
