// DinoKit's worker threads. A forward runs two dozen parallel loops back to back; waking sleeping
// threads for each (as a general-purpose pool does) costs tens of microseconds per loop, and
// boxing closures costs allocations. These threads instead spin for a few tens of microseconds
// after each loop, so that the next loop usually starts within a microsecond, then sleep on a
// condition variable until work comes. The caller waits for the loop's end the same way. Spins
// are short on purpose: two threads of ours may share one CPU (a busy or virtual machine), and a
// long spin would then hold the CPU the other thread needs.
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
static pthread_cond_t dk_done = PTHREAD_COND_INITIALIZER;  // caller: the last worker finished
static int dk_threads;            // pool threads started (guarded by dk_call_lock)
static long dk_generation;        // bumped per loop (atomic)
static int dk_workers;            // tasks in the current loop, caller included
static dk_task_fn dk_fn;
static void *dk_ctx;
static int dk_remaining;          // pool threads that have not yet finished the current loop (atomic)
static long dk_start_generation[DK_MAX_WORKERS + 1]; // the generation each thread was started in

static long dk_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

// Spins until *value != unwanted or DK_SPIN_NS pass; returns the last value read.
static long dk_spin_while_equal(const long *value, long unwanted) {
    long v = __atomic_load_n(value, __ATOMIC_ACQUIRE);
    if (v != unwanted) return v;
    const long end = dk_now_ns() + DK_SPIN_NS;
    for (int i = 1;; i++) {
        DK_PAUSE();
        v = __atomic_load_n(value, __ATOMIC_ACQUIRE);
        if (v != unwanted || ((i & 63) == 0 && dk_now_ns() > end)) return v;
    }
}

static void *dk_worker(void *arg) {
    const int index = (int)(long)arg; // task index = pool thread index + 1 (the caller is 0)
    long seen = dk_start_generation[index];
    for (;;) {
        long g = dk_spin_while_equal(&dk_generation, seen);
        if (g == seen) {
            pthread_mutex_lock(&dk_sleep_lock);
            while ((g = __atomic_load_n(&dk_generation, __ATOMIC_ACQUIRE)) == seen)
                pthread_cond_wait(&dk_wake, &dk_sleep_lock);
            pthread_mutex_unlock(&dk_sleep_lock);
        }
        seen = g;
        // Every pool thread checks in for every loop, with a task or without, so the caller
        // never starts the next loop while a thread is still looking at this one.
        const int workers = __atomic_load_n(&dk_workers, __ATOMIC_ACQUIRE);
        if (index < workers) dk_fn(dk_ctx, index, workers);
        if (__atomic_sub_fetch(&dk_remaining, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&dk_sleep_lock);
            pthread_cond_signal(&dk_done);
            pthread_mutex_unlock(&dk_sleep_lock);
        }
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
    while (dk_threads < n - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        dk_start_generation[dk_threads + 1] = __atomic_load_n(&dk_generation, __ATOMIC_ACQUIRE);
        const int ok = pthread_create(&t, &attr, dk_worker, (void *)(long)(dk_threads + 1)) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        dk_threads++;
    }
    if (dk_threads < n - 1) { // could not start enough threads
        pthread_mutex_unlock(&dk_call_lock);
        dk_run_inline(n, fn, ctx);
        return;
    }
    dk_fn = fn;
    dk_ctx = ctx;
    __atomic_store_n(&dk_remaining, dk_threads, __ATOMIC_RELEASE);
    __atomic_store_n(&dk_workers, n, __ATOMIC_RELEASE);
    pthread_mutex_lock(&dk_sleep_lock);
    __atomic_add_fetch(&dk_generation, 1, __ATOMIC_ACQ_REL);
    pthread_cond_broadcast(&dk_wake);
    pthread_mutex_unlock(&dk_sleep_lock);
    fn(ctx, 0, n);
    if (__atomic_load_n(&dk_remaining, __ATOMIC_ACQUIRE) > 0) {
        const long end = dk_now_ns() + DK_SPIN_NS;
        for (int i = 1; __atomic_load_n(&dk_remaining, __ATOMIC_ACQUIRE) > 0; i++) {
            DK_PAUSE();
            if ((i & 63) == 0 && dk_now_ns() > end) {
                pthread_mutex_lock(&dk_sleep_lock);
                while (__atomic_load_n(&dk_remaining, __ATOMIC_ACQUIRE) > 0) pthread_cond_wait(&dk_done, &dk_sleep_lock);
                pthread_mutex_unlock(&dk_sleep_lock);
                break;
            }
        }
    }
    pthread_mutex_unlock(&dk_call_lock);
}
