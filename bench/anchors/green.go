// green.go - the Go reference figures for weft's green threads
// (bench/micro/bench_green.c): goroutines are what weft's green threads
// are compared with.  A separate program from anchors.go (which runs with
// GOMAXPROCS=2 throughout): here the scheduler has one P (GOMAXPROCS=1), as
// weft has one worker, except for the "_2w" figure.
//
//   - green_yield_switch: two goroutines ping-pong over unbuffered channels,
//     ns per switch (one message = one switch).  runtime.Gosched ping-pong
//     is printed as a comment for comparison.
//   - green_spawn_join_batch / _2w: go N goroutines, then wg.Wait(), ns per
//     goroutine (GOMAXPROCS=1 / 2).  green_spawn_join_one: go one, wait for
//     it, repeat.
//   - green_queue_pingpong: the same channel ping-pong as the yield figure,
//     ns per message.
//   - green_parked_rss(_1k.._1m): VmRSS delta per goroutine parked on a
//     channel receive, each N in a fresh process (the program re-executes
//     itself: "-child mem N" / "-child spawn N").
//   - green_spawn_join_1k.._1m: spawn+join per goroutine at N (warm median).
//
// It prints the lines bench/micro/bench.h describes,
//
//	result <key> go <value> <unit> <lower|higher>
//
// with the median of WEFT_BENCH_REPS runs (default 5), sized by
// WEFT_BENCH_SCALE (default 1); WEFT_BENCH_GREEN_1M as in bench_green.c.
//
// Build and run: go build -o green bench/anchors/green.go && ./green
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
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

func result(key string, value float64, unit string) {
	fmt.Printf("result %s go %.6g %s lower\n", key, value, unit)
}

func report(key string, v []float64, unit string) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	fmt.Printf("#   go         median %10.4g %-8s (min %.4g, max %.4g, %d runs)\n",
		median(v), unit, s[0], s[len(s)-1], len(v))
	result(key, median(v), unit)
}

func rssKiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			v, _ := strconv.ParseFloat(strings.Fields(sc.Text())[1], 64)
			return v
		}
	}
	panic("no VmRSS")
}

// ---- ping-pong -------------------------------------------------------------

// chanPingPong: n round trips over two unbuffered channels; ns per message.
func chanPingPong(n int) float64 {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			pong <- <-ping
		}
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if <-pong != i {
			panic("wrong item")
		}
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(2*n)
}

// goschedPingPong: two goroutines call runtime.Gosched n times each.
func goschedPingPong(n int) float64 {
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	for k := 0; k < 2; k++ {
		go func() {
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(2*n)
}

func pingPong() {
	n := scaled(1000000, 1000)
	chanPingPong(n / 10)
	v, g := make([]float64, reps()), make([]float64, reps())
	for r := range v {
		v[r] = chanPingPong(n)
		g[r] = goschedPingPong(n)
	}
	fmt.Printf("# ping-pong over two unbuffered channels, GOMAXPROCS=1, %d round trips per run\n", n)
	fmt.Printf("#   (runtime.Gosched ping-pong: median %.4g ns per switch)\n", median(g))
	report("green_yield_switch", v, "ns")
	report("green_queue_pingpong", v, "ns")
}

// ---- spawn + join ------------------------------------------------------------

func spawnBatch(n int) float64 {
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func spawnOne(n int) float64 {
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func spawn(key string, f func(int) float64, n int, what string) {
	f(n)
	v := make([]float64, reps())
	for r := range v {
		v[r] = f(n)
	}
	fmt.Printf("# %s, GOMAXPROCS=%d, %d goroutines per run\n", what, runtime.GOMAXPROCS(0), n)
	report(key, v, "ns")
}

// ---- children: memory and scale -----------------------------------------------

func childMem(n int) {
	runtime.GC()
	before := rssKiB()
	var wg sync.WaitGroup
	ch := make(chan int)
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			wg.Done()
			<-ch
		}()
	}
	wg.Wait()
	time.Sleep(20 * time.Millisecond)
	after := rssKiB()
	close(ch)
	fmt.Printf("child %.4f %.0f %.0f\n", (after-before)/float64(n), before, after)
}

func childSpawn(n int) {
	cold := spawnBatch(n)
	k := 5
	if n >= 1000000 {
		k = 3
	}
	v := make([]float64, k)
	for r := range v {
		v[r] = spawnBatch(n)
	}
	fmt.Printf("child %.4f %.4f\n", median(v), cold)
}

func runChild(mode string, n int) ([]float64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exe, _ := os.Executable()
	out, err := exec.CommandContext(ctx, exe, "-child", mode, strconv.Itoa(n)).Output()
	if err != nil {
		fmt.Printf("#   child %s %d: failed or did not finish in 60 s (%v)\n", mode, n, err)
		return nil, false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "child ") {
			var v []float64
			for _, f := range strings.Fields(line)[1:] {
				x, _ := strconv.ParseFloat(f, 64)
				v = append(v, x)
			}
			return v, true
		}
	}
	return nil, false
}

func want1M() bool {
	if s := os.Getenv("WEFT_BENCH_GREEN_1M"); s != "" {
		return s != "0"
	}
	return scale() >= 1
}

func memory() {
	k := reps()
	if k > 3 {
		k = 3
	}
	var v []float64
	for r := 0; r < k; r++ {
		if m, ok := runChild("mem", 100000); ok {
			v = append(v, m[0])
		}
	}
	fmt.Printf("# resident memory per goroutine parked on a channel, 100,000 of them, VmRSS delta / N in a fresh process\n")
	if len(v) > 0 {
		report("green_parked_rss", v, "KiB")
	}
	fmt.Printf("# growth: spawn N then wg.Wait (warm median; cold = first run) and RSS per parked goroutine, each N in a fresh process, GOMAXPROCS=1\n")
	ns := []int{1000, 10000, 100000, 1000000}
	tags := []string{"1k", "10k", "100k", "1m"}
	for i, n := range ns {
		if n == 1000000 && !want1M() {
			fmt.Printf("#   N=1m skipped (WEFT_BENCH_GREEN_1M=0 or scale < 1)\n")
			continue
		}
		if m, ok := runChild("spawn", n); ok {
			fmt.Printf("#   N=%-8d spawn+join %.1f ns (cold %.1f ns)\n", n, m[0], m[1])
			result("green_spawn_join_"+tags[i], m[0], "ns")
		}
		if m, ok := runChild("mem", n); ok {
			fmt.Printf("#   N=%-8d parked %.3f KiB each (RSS %.0f -> %.0f KiB)\n", n, m[0], m[1], m[2])
			result("green_parked_rss_"+tags[i], m[0], "KiB")
		}
	}
}

func main() {
	runtime.GOMAXPROCS(1)
	if len(os.Args) == 4 && os.Args[1] == "-child" {
		n, _ := strconv.Atoi(os.Args[3])
		if os.Args[2] == "mem" {
			childMem(n)
		} else {
			childSpawn(n)
		}
		return
	}
	pingPong()
	n := scaled(100000, 1000)
	spawn("green_spawn_join_batch", spawnBatch, n, "go N, then wg.Wait")
	spawn("green_spawn_join_one", spawnOne, n, "go one, wg.Wait, repeat")
	runtime.GOMAXPROCS(2)
	spawn("green_spawn_join_batch_2w", spawnBatch, n, "go N, then wg.Wait")
	runtime.GOMAXPROCS(1)
	memory()
}
