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
#define REPORT(name, macs) \
    printf("%-12s %5.2f instructions/ns, %6.1f G multiply-adds/s\n", name, 12.0 * N / (t1 - t0) / 1e9, 12.0 * N * (macs) / (t1 - t0) / 1e9)

int main(void) {
    double t0, t1;
    {
#define D(i) __m512 a##i = _mm512_set1_ps(i * 1e-9f);
        R12(D)
#undef D
        __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
        __asm__ volatile("" : "+v"(x), "+v"(y));
        t0 = now();
        for (long n = 0; n < N; n++) {
#define F(i) a##i = _mm512_fmadd_ps(x, a##i, y);
            R12(F)
#undef F
        }
        t1 = now();
#define S(i) +a##i[0]
        float sink = 0 R12(S);
#undef S
        __asm__ volatile("" ::"x"(sink));
        REPORT("f32 FMA", 16);
    }
    {
#define D(i) __m512 a##i = _mm512_set1_ps(i * 1e-9f);
        R12(D)
#undef D
        __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3f80);
        __asm__ volatile("" : "+v"(x), "+v"(y));
        t0 = now();
        for (long n = 0; n < N; n++) {
#define F(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
            R12(F)
#undef F
        }
        t1 = now();
#define S(i) +a##i[0]
        float sink = 0 R12(S);
#undef S
        __asm__ volatile("" ::"x"(sink));
        REPORT("bf16 dot", 32);
    }
    {
#define D(i) __m512i a##i = _mm512_set1_epi32(i);
        R12(D)
#undef D
        __m512i u = _mm512_set1_epi8(3), s = _mm512_set1_epi8(-2);
        __asm__ volatile("" : "+v"(u), "+v"(s));
        t0 = now();
        for (long n = 0; n < N; n++) {
#define F(i) a##i = _mm512_dpbusd_epi32(a##i, u, s);
            R12(F)
#undef F
        }
        t1 = now();
#define S(i) +_mm512_reduce_add_epi32(a##i)
        int sink = 0 R12(S);
#undef S
        __asm__ volatile("" ::"r"(sink));
        REPORT("int8 dot", 64);
    }
    return 0;
}
