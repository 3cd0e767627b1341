/* The peak rate of one core's 512-bit multiply-add instructions: f32 FMA
 * (vfmadd231ps, 16 multiply-adds), bf16 dot product (vdpbf16ps, 32) and
 * int8 dot product (vpdpbusd, 64), each on 12 independent accumulators so
 * that latency is hidden. Their ratios bound what bf16 and int8 products
 * can gain over f32 on this CPU. Built and run by dot_products.sh. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define N 100000000L
#define R12(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)

/* Times N rounds of `a_i = STEP(a_i, x, y)` on accumulators of type ACC
 * started at INIT(i), with operands X and Y hidden from the optimiser, and
 * prints the rate for MACS multiply-adds per instruction. */
#define PEAK(name, MACS, ACC, INIT, X, Y, STEP)                                       \
    {                                                                                 \
        __typeof__(X) x = (X), y = (Y);                                               \
        __asm__ volatile("" : "+v"(x), "+v"(y));                                      \
        R12(DECLARE)                                                                  \
        double t0 = now();                                                            \
        for (long n = 0; n < N; n++) {                                                \
            R12(UPDATE)                                                               \
        }                                                                             \
        double t1 = now();                                                            \
        R12(KEEP)                                                                     \
        printf("%-12s %5.2f instructions/ns, %6.1f G multiply-adds/s\n", name,       \
               12.0 * N / (t1 - t0) / 1e9, 12.0 * N * (MACS) / (t1 - t0) / 1e9);      \
    }
#define DECLARE(i) ACC a##i = INIT(i);
#define UPDATE(i) a##i = STEP(a##i, x, y);
#define KEEP(i) __asm__ volatile("" ::"v"(a##i));

#define FMA(a, x, y) _mm512_fmadd_ps(x, a, y)
#define F32_INIT(i) _mm512_set1_ps(i * 1e-9f)
#define I32_INIT(i) _mm512_set1_epi32(i)

int main(void) {
#define ACC __m512
#define INIT F32_INIT
#define STEP FMA
    PEAK("f32 FMA", 16, ACC, INIT, _mm512_set1_ps(1.0000001f), _mm512_set1_ps(0.9999999f), STEP)
#undef STEP
#define STEP _mm512_dpbf16_ps
    PEAK("bf16 dot", 32, ACC, INIT, (__m512bh)_mm512_set1_epi16(0x3f80), (__m512bh)_mm512_set1_epi16(0x3f80), STEP)
#undef STEP
#undef INIT
#undef ACC
#define ACC __m512i
#define INIT I32_INIT
#define STEP _mm512_dpbusd_epi32
    PEAK("int8 dot", 64, ACC, INIT, _mm512_set1_epi8(3), _mm512_set1_epi8(-2), STEP)
    return 0;
}
