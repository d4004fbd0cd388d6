// DinoKit's worker threads. A forward runs two dozen parallel loops back to back; waking sleeping
// threads for each (as a general-purpose pool does) costs tens of microseconds per loop, and
// boxing closures costs allocations. These threads instead spin for a few tens of microseconds
// after each loop, so that the next loop usually starts within a microsecond, then sleep on a
// condition variable until work comes. The caller waits for the loop's end the same way. Spins
// are short on purpose: two threads of ours may share one CPU (a busy or virtual machine), and a
// long spin would then hold the CPU the other thread needs.
//
// Tasks are not bound to threads: every thread (the caller included) claims the next unclaimed
// task index from one shared word until none is left, and the loop ends when all n tasks have
// finished. On a machine where another process holds a core, a worker that is not running when
// the loop starts simply claims nothing: the caller runs its share instead of waiting a
// scheduler time slice for it, at every one of the hundreds of loops of a training step. The
// index still names the task's slot (per-task scratch in parallelForWorkers), as each index runs
// exactly once.
//
// One loop runs at a time: a second caller (another thread's forward, or a loop started from
// inside a loop) runs its tasks on its own thread, one after the other, rather than
// oversubscribing the cores.
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define DK_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define DK_PAUSE() __asm__ volatile("yield")
#else
#define DK_PAUSE() ((void)0)
#endif

#define DK_SPIN_NS 30000L
#define DK_MAX_WORKERS 255

static pthread_mutex_t dk_call_lock = PTHREAD_MUTEX_INITIALIZER; // one loop at a time
static pthread_mutex_t dk_sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dk_wake = PTHREAD_COND_INITIALIZER;  // workers: a loop started
static pthread_cond_t dk_done = PTHREAD_COND_INITIALIZER;  // caller: the last task finished
static int dk_threads;            // pool threads started (guarded by dk_call_lock)
// The loop in one word: generation (bits 32-62), task count (bits 16-31) and the next task index
// to claim (bits 0-15). A claim is a compare-and-swap of the whole word, so it succeeds only
// while the loop the claimer read (count included) is still open.
static long dk_word;
static dk_task_fn dk_fn; // written by the caller before it publishes the loop's word
static void *dk_ctx;
static int dk_finished;           // tasks of the current loop that have finished (atomic)

void dk_pause(void) { DK_PAUSE(); }

static long dk_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static long dk_generation_of(long word) { return (long)((unsigned long)word >> 32); }
static int dk_count_of(long word) { return (int)((word >> 16) & 0xffff); }
static int dk_index_of(long word) { return (int)(word & 0xffff); }

// Claims and runs tasks of generation `generation` until none is left (or a newer loop has
// started, which means this one is over).
static void dk_run_claims(long generation) {
    for (;;) {
        long w = __atomic_load_n(&dk_word, __ATOMIC_ACQUIRE);
        if (dk_generation_of(w) != generation) return;
        const int index = dk_index_of(w), count = dk_count_of(w);
        if (index >= count) return;
        // Read before the claim: a successful claim below proves the loop was still open, so
        // these were not yet overwritten by the next loop (the caller starts one only after
        // every index has been claimed and finished).
        const dk_task_fn fn = __atomic_load_n(&dk_fn, __ATOMIC_RELAXED);
        void *const ctx = __atomic_load_n(&dk_ctx, __ATOMIC_RELAXED);
        if (!__atomic_compare_exchange_n(&dk_word, &w, w + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
        fn(ctx, index, count);
        if (__atomic_add_fetch(&dk_finished, 1, __ATOMIC_ACQ_REL) == count) {
            pthread_mutex_lock(&dk_sleep_lock);
            pthread_cond_signal(&dk_done);
            pthread_mutex_unlock(&dk_sleep_lock);
        }
    }
}

// Spins until the generation differs from `seen` or DK_SPIN_NS pass; returns the last word read.
static long dk_spin_for_new_generation(long seen) {
    long w = __atomic_load_n(&dk_word, __ATOMIC_ACQUIRE);
    if (dk_generation_of(w) != seen) return w;
    const long end = dk_now_ns() + DK_SPIN_NS;
    for (int i = 1;; i++) {
        DK_PAUSE();
        w = __atomic_load_n(&dk_word, __ATOMIC_ACQUIRE);
        if (dk_generation_of(w) != seen || ((i & 63) == 0 && dk_now_ns() > end)) return w;
    }
}

static void *dk_worker(void *arg) {
    long seen = (long)arg; // the generation current when this thread was started
    for (;;) {
        long w = dk_spin_for_new_generation(seen);
        if (dk_generation_of(w) == seen) {
            pthread_mutex_lock(&dk_sleep_lock);
            while (dk_generation_of(w = __atomic_load_n(&dk_word, __ATOMIC_ACQUIRE)) == seen)
                pthread_cond_wait(&dk_wake, &dk_sleep_lock);
            pthread_mutex_unlock(&dk_sleep_lock);
        }
        seen = dk_generation_of(w);
        dk_run_claims(seen);
    }
    return 0;
}

static void dk_run_inline(int n, dk_task_fn fn, void *ctx) {
    for (int i = 0; i < n; i++) fn(ctx, i, n);
}

void dk_parallel(int n, dk_task_fn fn, void *ctx) {
    if (n <= 1) {
        if (n == 1) fn(ctx, 0, 1);
        return;
    }
    if (n > DK_MAX_WORKERS + 1 || pthread_mutex_trylock(&dk_call_lock) != 0) {
        dk_run_inline(n, fn, ctx);
        return;
    }
    const long current = dk_generation_of(__atomic_load_n(&dk_word, __ATOMIC_ACQUIRE));
    while (dk_threads < n - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int ok = pthread_create(&t, &attr, dk_worker, (void *)current) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        dk_threads++;
    }
    if (dk_threads == 0) { // could not start a thread
        pthread_mutex_unlock(&dk_call_lock);
        dk_run_inline(n, fn, ctx);
        return;
    }
    __atomic_store_n(&dk_fn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&dk_ctx, ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&dk_finished, 0, __ATOMIC_RELEASE);
    const long generation = (current + 1) & 0x7fffffffL;
    pthread_mutex_lock(&dk_sleep_lock);
    __atomic_store_n(&dk_word, generation << 32 | (long)n << 16, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&dk_wake);
    pthread_mutex_unlock(&dk_sleep_lock);
    dk_run_claims(generation);
    // Every index is claimed; wait for the tasks other threads are still running.
    if (__atomic_load_n(&dk_finished, __ATOMIC_ACQUIRE) < n) {
        const long end = dk_now_ns() + DK_SPIN_NS;
        for (int i = 1; __atomic_load_n(&dk_finished, __ATOMIC_ACQUIRE) < n; i++) {
            DK_PAUSE();
            if ((i & 63) == 0 && dk_now_ns() > end) {
                pthread_mutex_lock(&dk_sleep_lock);
                while (__atomic_load_n(&dk_finished, __ATOMIC_ACQUIRE) < n) pthread_cond_wait(&dk_done, &dk_sleep_lock);
                pthread_mutex_unlock(&dk_sleep_lock);
                break;
            }
        }
    }
    pthread_mutex_unlock(&dk_call_lock);
}
