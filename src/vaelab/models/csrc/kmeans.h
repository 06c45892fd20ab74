/* What kmeans.c and kmeanspp.c share: vectors of doubles as the compiler's vector type. */
#ifndef VAELAB_KMEANS_H
#define VAELAB_KMEANS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EPS 2.220446049250313e-16
#define LANES 4 /* doubles in a vector */
#define KERNEL static inline __attribute__((always_inline))

typedef double vec __attribute__((vector_size(LANES * sizeof(double))));
typedef int64_t mask __attribute__((vector_size(LANES * sizeof(double))));

static inline int64_t lanes(int64_t n) { return (n + LANES - 1) / LANES * LANES; }

KERNEL vec load(const double *p) {
    vec v;
    memcpy(&v, p, sizeof v);
    return v;
}
KERNEL void store(double *p, vec v) { memcpy(p, &v, sizeof v); }
KERNEL vec splat(double s) { return (vec){s, s, s, s}; }
KERNEL vec pick(mask m, vec a, vec b) { /* a where m, else b */
    return (vec)(((mask)a & m) | ((mask)b & ~m));
}
KERNEL double total(vec v) { return (v[0] + v[1]) + (v[2] + v[3]); }

#ifdef __AVX__
#include <immintrin.h>
KERNEL unsigned bits_of(mask m) { return (unsigned)_mm256_movemask_pd((__m256d)m); }
#else
KERNEL unsigned bits_of(mask m) { /* lane q's sign in bit q */
    unsigned b = 0;
    for (int q = 0; q < LANES; q++) b |= (unsigned)(m[q] & 1) << q;
    return b;
}
#endif

#endif
