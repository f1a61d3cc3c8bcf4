// executor.go - the Go reference figures for weft's executor benchmarks
// (bench/micro/bench_executor.c): a worker pool over channels running a
// trivial task (its argument + 1), with GOMAXPROCS=2 and 2 workers, the
// worker count the C benchmark gives weft's executors.
//
// The pool is what a Go programmer writes for "submit work, get a future":
// a fixed set of worker goroutines ranging over one jobs channel; each job
// carries its own reply channel of capacity 1, which plays the future (the
// worker's send never waits; the submitter receives when it wants the
// result).  The jobs channel holds every job of a run, so submitting never
// waits for the workers, as with an unbounded executor queue.
//
// Figures, in tasks/s (higher is better):
//
//	executor_one    submit one task, wait for its result, repeat
//	executor_batch  submit 100,000 tasks, then wait for each result in
//	                submission order
//
// It prints the lines bench/micro/bench.h describes:
//
//	result <key> go <value> tasks/s higher
//
// with the median of WEFT_BENCH_REPS runs (default 5), each sized by
// WEFT_BENCH_SCALE (default 1).  A leaner pool that sends every result to
// one shared results channel (no reply channel per task, results in
// completion order) is measured too and printed as a comment line only: it
// is not the same contract as a future per task.
//
// Build and run: go run bench/anchors/executor.go (no module needed).
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"
)

const workers = 2

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

func report(key, impl string, v []float64, comment bool) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	fmt.Printf("#   %-10s median %10.4g %-8s (min %.4g, max %.4g, %d runs)\n",
		impl, median(v), "tasks/s", s[0], s[len(s)-1], len(v))
	if !comment {
		fmt.Printf("result %s %s %.6g tasks/s higher\n", key, impl, median(v))
	}
}

// ---- the pool with a reply channel per task ---------------------------

type job struct {
	arg   int
	reply chan int // capacity 1: the task's future
}

func task(x int) int { return x + 1 }

func worker(jobs <-chan job) {
	for j := range jobs {
		j.reply <- task(j.arg)
	}
}

// startPool starts the workers on a jobs channel holding up to capacity
// jobs; closing the channel stops them.
func startPool(capacity int) chan job {
	jobs := make(chan job, capacity)
	for w := 0; w < workers; w++ {
		go worker(jobs)
	}
	return jobs
}

// one: n round trips, each submitting one task and waiting for its result.
func one(n int) float64 {
	jobs := startPool(16)
	defer close(jobs)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		r := make(chan int, 1)
		jobs <- job{i, r}
		if <-r != i+1 {
			panic("wrong result")
		}
	}
	return float64(n) / time.Since(t0).Seconds()
}

// batch: submit n tasks, then wait for each result in submission order.
func batch(n int) float64 {
	jobs := startPool(n)
	defer close(jobs)
	replies := make([]chan int, n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		replies[i] = make(chan int, 1)
		jobs <- job{i, replies[i]}
	}
	for i := 0; i < n; i++ {
		if <-replies[i] != i+1 {
			panic("wrong result")
		}
	}
	return float64(n) / time.Since(t0).Seconds()
}

// ---- the leaner pool: one shared results channel ------------------------

// batchShared: submit n arguments, collect n results in completion order
// from one results channel (checked by their sum).
func batchShared(n int) float64 {
	args := make(chan int, n)
	results := make(chan int, n)
	for w := 0; w < workers; w++ {
		go func() {
			for x := range args {
				results <- task(x)
			}
		}()
	}
	defer close(args)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		args <- i
	}
	sum := 0
	for i := 0; i < n; i++ {
		sum += <-results
	}
	el := time.Since(t0).Seconds()
	if sum != n*(n+1)/2 {
		panic("wrong sum")
	}
	return float64(n) / el
}

func main() {
	runtime.GOMAXPROCS(2)
	nOne := scaled(200000, 1000)
	nBatch := scaled(100000, 1000)
	v := make([]float64, reps())

	one(nOne / 10) // warm up: the runtime's first goroutines and stacks
	for r := range v {
		v[r] = one(nOne)
	}
	fmt.Printf("# submit -> result one at a time, %d workers, %d tasks per run\n",
		workers, nOne)
	report("executor_one", "go", v, false)

	batch(nBatch / 10)
	for r := range v {
		v[r] = batch(nBatch)
	}
	fmt.Printf("# %d tasks submitted then awaited in order, %d workers, a reply channel per task\n",
		nBatch, workers)
	report("executor_batch", "go", v, false)

	for r := range v {
		v[r] = batchShared(nBatch)
	}
	fmt.Printf("# the same batch with one shared results channel (no future per task; comment only)\n")
	report("executor_batch", "go_shared", v, true)
}
