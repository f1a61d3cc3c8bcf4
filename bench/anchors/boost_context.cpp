// boost_context.cpp - the Boost.Context anchors for weft's yield switch
// (bench/micro/bench_green.c, key green_yield_switch): a ping-pong between
// the main context and one other, on one thread, with no scheduler.
//
//   boost_fiber     boost::context::fiber, each resume() one switch
//   boost_fcontext  the raw jump_fcontext/make_fcontext under it (from the
//                   public header boost/context/detail/fcontext.hpp)
//
// weft's yield goes through a scheduler (green thread -> worker loop ->
// green thread), so it does more per switch than either; the target
// is weft's yield <= 1.0x boost::context::fiber.
//
// The two run interleaved in one process (which goes first alternates),
// and the medians are printed as bench/micro/bench.h describes:
//
//	result green_yield_switch <impl> <ns> ns lower
//
// WEFT_BENCH_SCALE and WEFT_BENCH_REPS as for the C benchmarks.
// Build: g++ -O2 boost_context.cpp -o boost_context -lboost_context
#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace ctx = boost::context;
namespace det = boost::context::detail;

static double scale()
{
    const char *s = std::getenv("WEFT_BENCH_SCALE");
    double v = s && *s ? std::strtod(s, nullptr) : 1.0;
    return v > 0 ? v : 1.0;
}

static int reps()
{
    const char *s = std::getenv("WEFT_BENCH_REPS");
    int v = s && *s ? std::atoi(s) : 5;
    return v >= 1 ? v : 1;
}

static long long now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// ---- boost::context::fiber ----------------------------------------------

static long fiber_count;

static double run_fiber(long n)
{
    fiber_count = 0;
    ctx::fiber f{[](ctx::fiber &&m) {
        for (;;) {
            fiber_count++;
            m = std::move(m).resume();
        }
        return std::move(m);
    }};
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        f = std::move(f).resume();
    long long t1 = now_ns();
    if (fiber_count != n) {
        std::fprintf(stderr, "boost fiber: wrong count\n");
        std::exit(1);
    }
    // The fiber never returns; destroying f unwinds it (forced_unwind).
    return double(t1 - t0) / double(2 * n);
}

// ---- jump_fcontext ----------------------------------------------------------

static long fctx_count;

static void fctx_peer(det::transfer_t t)
{
    for (;;) {
        fctx_count++;
        t = det::jump_fcontext(t.fctx, nullptr);
    }
}

static double run_fcontext(long n)
{
    static std::vector<char> stack(64 * 1024);
    fctx_count = 0;
    det::fcontext_t c =
        det::make_fcontext(stack.data() + stack.size(), stack.size(), fctx_peer);
    det::transfer_t t = det::jump_fcontext(c, nullptr); // first entry
    fctx_count = 0;
    long long t0 = now_ns();
    for (long i = 0; i < n; i++)
        t = det::jump_fcontext(t.fctx, nullptr);
    long long t1 = now_ns();
    if (fctx_count != n) {
        std::fprintf(stderr, "boost fcontext: wrong count\n");
        std::exit(1);
    }
    return double(t1 - t0) / double(2 * n);
}

static void report(const char *impl, std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    std::printf("#   %-14s median %10.4g ns       (min %.4g, max %.4g, %zu runs)\n",
                impl, med, v[0], v[n - 1], n);
    std::printf("result green_yield_switch %s %.6g ns lower\n", impl, med);
}

int main()
{
    long n = long(20000000 * scale());
    if (n < 1000)
        n = 1000;
    int r = reps();
    std::vector<double> vf, vc;
    run_fiber(n / 10);
    run_fcontext(n / 10);
    for (int i = 0; i < r; i++) {
        if (i % 2 == 0) {
            vf.push_back(run_fiber(n));
            vc.push_back(run_fcontext(n));
        } else {
            vc.push_back(run_fcontext(n));
            vf.push_back(run_fiber(n));
        }
    }
    std::printf("# Boost.Context ping-pong with main, one thread, %ld round trips per run\n", n);
    report("boost_fiber", vf);
    report("boost_fcontext", vc);
    return 0;
}
