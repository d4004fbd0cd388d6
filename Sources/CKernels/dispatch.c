// Which kernels run: the best instruction set the CPU and OS support, unless DINOKIT_KERNELS
// (read once, at first use) or dk_set_path asks for a slower one.
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned long long dk_xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

int dk_path_for_cpu(dk_cpu_features f) {
    if (!f.osxsave || !f.avx) return DK_PATH_SCALAR;
    // The OS must save the vector registers: XMM|YMM (bits 1, 2), and for AVX-512 also the
    // opmask and upper ZMM state (bits 5-7).
    if ((f.xcr0 & 0x6) != 0x6) return DK_PATH_SCALAR;
    if (f.fma && f.avx2 && f.avx512f && f.avx512dq && f.avx512vl && (f.xcr0 & 0xE6) == 0xE6) return DK_PATH_AVX512;
    if (f.fma && f.avx2) return DK_PATH_AVX2;
    return DK_PATH_SCALAR;
}

int dk_supported_path(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return DK_PATH_SCALAR;
    dk_cpu_features f = {0};
    f.fma = (c >> 12) & 1;
    f.osxsave = (c >> 27) & 1;
    f.avx = (c >> 28) & 1;
    if (!f.osxsave || !f.avx) return DK_PATH_SCALAR;  // xgetbv itself needs OSXSAVE
    f.xcr0 = dk_xgetbv0();
    if (__get_cpuid_max(0, 0) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f.avx2 = (b >> 5) & 1;
        f.avx512f = (b >> 16) & 1;
        f.avx512dq = (b >> 17) & 1;
        f.avx512vl = (b >> 31) & 1;
    }
    return dk_path_for_cpu(f);
#else
    return DK_PATH_SCALAR;
#endif
}

static int dk_path = -1;

static int dk_path_from_environment(void) {
    const int best = dk_supported_path();
    const char *s = getenv("DINOKIT_KERNELS");
    int want = best;
    if (s && strcmp(s, "scalar") == 0) want = DK_PATH_SCALAR;
    else if (s && strcmp(s, "avx2") == 0) want = DK_PATH_AVX2;
    else if (s && strcmp(s, "avx512") == 0) want = DK_PATH_AVX512;
    return want < best ? want : best;
}

int dk_active_path(void) {
    int p = __atomic_load_n(&dk_path, __ATOMIC_ACQUIRE);
    if (p < 0) {
        p = dk_path_from_environment();
        int expected = -1;
        if (!__atomic_compare_exchange_n(&dk_path, &expected, p, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) p = expected;
    }
    return p;
}

int dk_set_path(int path) {
    const int best = dk_supported_path();
    int p = path < DK_PATH_SCALAR ? DK_PATH_SCALAR : (path > best ? best : path);
    __atomic_store_n(&dk_path, p, __ATOMIC_RELEASE);
    return p;
}

const dk_ops *dk_current_ops(void) {
    switch (dk_active_path()) {
#if defined(__x86_64__)
    case DK_PATH_AVX512: return &dk_ops_avx512;
    case DK_PATH_AVX2: return &dk_ops_avx2;
#endif
    default: return &dk_ops_scalar;
    }
}

void dk_layernorm(int rows, int cols, const float *x, long ldx, float *y, long ldy, const float *w, const float *b,
                  float eps, float *mean, float *rstd) {
    if (rows <= 0 || cols <= 0) return;
    dk_current_ops()->layernorm(rows, cols, x, ldx, y, ldy, w, b, eps, mean, rstd);
}

void dk_gelu(float *y, const float *x, long n) {
    if (n > 0) dk_current_ops()->gelu(y, x, n);
}

void dk_gelu_backward(float *dx, const float *dy, const float *x, long n) {
    if (n > 0) dk_current_ops()->gelu_backward(dx, dy, x, n);
}

void dk_silu(float *y, const float *x, long n) {
    if (n > 0) dk_current_ops()->silu(y, x, n);
}

void dk_swiglu(float *y, const float *u, int rows, int hidden) {
    if (rows > 0 && hidden > 0) dk_current_ops()->swiglu(y, u, rows, hidden);
}

void dk_softmax_rows(float *x, int rows, int cols, long ld) {
    if (rows > 0 && cols > 0) dk_current_ops()->softmax(x, rows, cols, ld);
}

void dk_residual(float *x, const float *branch, const float *gamma, int rows, int cols) {
    if (rows > 0 && cols > 0) dk_current_ops()->residual(x, branch, gamma, rows, cols);
}

long dk_fetch_add(long *counter, long delta) { return __atomic_fetch_add(counter, delta, __ATOMIC_RELAXED); }

// ---- bf16 -----------------------------------------------------------------------------------

int dk_bf16_native_supported(void) {
#if defined(__x86_64__)
    if (dk_supported_path() != DK_PATH_AVX512) return 0;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    unsigned a, b, c, d;
    __cpuid_count(7, 1, a, b, c, d);
    return (a >> 5) & 1; // CPUID.(EAX=7, ECX=1):EAX bit 5: AVX512_BF16
#else
    return 0;
#endif
}

// AMX: the CPU has AMX-TILE and AMX-BF16 (CPUID 7.0 EDX bits 24, 22), the OS manages the tile
// state (XCR0 bits 17, 18), and Linux grants this process the tile data (arch_prctl
// ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), asked once.
static int dk_amx_state = -1;

int dk_bf16_amx_supported(void) {
    int s = __atomic_load_n(&dk_amx_state, __ATOMIC_ACQUIRE);
    if (s >= 0) return s;
    s = 0;
#if defined(__x86_64__) && defined(__linux__)
    if (dk_bf16_native_supported()) {
        unsigned a, b, c, d;
        __cpuid_count(7, 0, a, b, c, d);
        const int tile = (d >> 24) & 1, bf16 = (d >> 22) & 1;
        if (tile && bf16 && (dk_xgetbv0() & 0x60000) == 0x60000)
            s = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
    }
#endif
    __atomic_store_n(&dk_amx_state, s, __ATOMIC_RELEASE);
    return s;
}

// The reduced-precision tiles DINOKIT_TILES asks for (read once, at first use): "amx" (or unset)
// 2, the fastest; "dot" 1, vdpbf16ps and vpdpbusd (the tiles of CPUs without AMX, measurable on an
// AMX machine); "fallback" 0, the widening bf16 and pmaddubsw int8 tiles. Like DINOKIT_KERNELS,
// it never gets a tile the CPU lacks.
static int dk_tiles_level(void) {
    static int level = -1;
    int l = __atomic_load_n(&level, __ATOMIC_ACQUIRE);
    if (l < 0) {
        const char *s = getenv("DINOKIT_TILES");
        l = s && strcmp(s, "fallback") == 0 ? 0 : s && strcmp(s, "dot") == 0 ? 1 : 2;
        __atomic_store_n(&level, l, __ATOMIC_RELEASE);
    }
    return l;
}

// The fastest bf16 tile allowed: 2 AMX, 1 vdpbf16ps, 0 the widening fallback; -1 DINOKIT_TILES's.
static int dk_bf16_level = -1;

// Whether vdpbf16ps is the faster of the two vector bf16 tiles when nobody chose one. Intel's
// cores retire it at about a quarter of vfmadd231ps's rate (measured on a Xeon family 6 model 207:
// 1.35 G against 5.5 G instructions/s per core, two products each against one), so the widening
// tile, which runs float FMAs on bf16 values, is faster there (ViT-S/14: 1.4-1.6×, bench-tiles);
// elsewhere (AMD) vdpbf16ps is kept. Asking for it (DINOKIT_TILES=dot, dk_set_bf16_level(1)) runs
// it anyway. Asked once: it is read on every bf16 GEMM, and CPUID traps to the hypervisor in a VM.
static int dk_bf16_dot_preferred(void) {
    static int preferred = -1;
    int p = __atomic_load_n(&preferred, __ATOMIC_ACQUIRE);
    if (p < 0) {
        p = 1;
#if defined(__x86_64__)
        unsigned a, b, c, d;
        if (__get_cpuid(0, &a, &b, &c, &d)) p = !(b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e); // "GenuineIntel"
#endif
        __atomic_store_n(&preferred, p, __ATOMIC_RELEASE);
    }
    return p;
}

const dk_bf16_ops *dk_current_bf16_ops(void) {
    switch (dk_active_path()) {
#if defined(__x86_64__)
    case DK_PATH_AVX512: {
        const int chosen = __atomic_load_n(&dk_bf16_level, __ATOMIC_ACQUIRE);
        const int level = chosen >= 0 ? chosen : dk_tiles_level();
        if (level >= 2 && dk_bf16_amx_supported()) return &dk_bf16_ops_avx512_amx;
        // Without AMX: vdpbf16ps when asked for by name (a level of 1), else where it is the faster.
        const int dot = level == 1 || (level >= 2 && dk_bf16_dot_preferred());
        return dot && dk_bf16_native_supported() ? &dk_bf16_ops_avx512_native : &dk_bf16_ops_avx512;
    }
    case DK_PATH_AVX2: return &dk_bf16_ops_avx2;
#endif
    default: return &dk_bf16_ops_scalar;
    }
}

int dk_set_bf16_level(int level) {
    __atomic_store_n(&dk_bf16_level, level < 0 ? 0 : level > 2 ? 2 : level, __ATOMIC_RELEASE);
#if defined(__x86_64__)
    const dk_bf16_ops *ops = dk_current_bf16_ops();
    return ops == &dk_bf16_ops_avx512_amx ? 2 : ops == &dk_bf16_ops_avx512_native ? 1 : 0;
#else
    return 0;
#endif
}

const char *dk_bf16_kernel_name(void) { return dk_current_bf16_ops()->name; }

// ---- int8 -----------------------------------------------------------------------------------

int dk_int8_vnni_supported(void) {
#if defined(__x86_64__)
    if (dk_supported_path() != DK_PATH_AVX512) return 0;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    return ((b >> 30) & 1) && ((c >> 11) & 1); // AVX512BW, AVX512_VNNI
#else
    return 0;
#endif
}

// AMX-INT8: AMX-TILE and AMX-INT8 (CPUID 7.0 EDX bits 24, 25), tile state in XCR0, and the Linux
// permission (the same request as bf16's: one grant covers both).
static int dk_amx_int8_state = -1;

int dk_int8_amx_supported(void) {
    int s = __atomic_load_n(&dk_amx_int8_state, __ATOMIC_ACQUIRE);
    if (s >= 0) return s;
    s = 0;
#if defined(__x86_64__) && defined(__linux__)
    if (dk_int8_vnni_supported()) {
        unsigned a, b, c, d;
        __cpuid_count(7, 0, a, b, c, d);
        const int tile = (d >> 24) & 1, int8 = (d >> 25) & 1;
        if (tile && int8 && (dk_xgetbv0() & 0x60000) == 0x60000)
            s = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
    }
#endif
    __atomic_store_n(&dk_amx_int8_state, s, __ATOMIC_RELEASE);
    return s;
}

// The fastest int8 tile allowed: 2 AMX, 1 vpdpbusd, 0 the pmaddubsw fallback; -1 DINOKIT_TILES's.
static int dk_int8_level = -1;

const dk_int8_ops *dk_current_int8_ops(void) {
    switch (dk_active_path()) {
#if defined(__x86_64__)
    case DK_PATH_AVX512: {
        const int chosen = __atomic_load_n(&dk_int8_level, __ATOMIC_ACQUIRE);
        const int level = chosen >= 0 ? chosen : dk_tiles_level();
        if (level >= 2 && dk_int8_amx_supported()) return &dk_int8_ops_avx512_amx;
        return level >= 1 && dk_int8_vnni_supported() ? &dk_int8_ops_avx512_vnni : &dk_int8_ops_avx2;
    }
    case DK_PATH_AVX2: return &dk_int8_ops_avx2;
#endif
    default: return &dk_int8_ops_scalar;
    }
}

int dk_set_int8_level(int level) {
    __atomic_store_n(&dk_int8_level, level < 0 ? 0 : level > 2 ? 2 : level, __ATOMIC_RELEASE);
#if defined(__x86_64__)
    const dk_int8_ops *ops = dk_current_int8_ops();
    return ops == &dk_int8_ops_avx512_amx ? 2 : ops == &dk_int8_ops_avx512_vnni ? 1 : 0;
#else
    return 0;
#endif
}

const char *dk_int8_kernel_name(void) { return dk_current_int8_ops()->name; }
