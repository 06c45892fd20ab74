/* Fused elementwise passes of vaelab's training step on the CPU (loaded by vaelab/kernels.py).
 *
 * Each function does in one pass over memory what would otherwise be several tensor ops, with
 * its own exp and log1p: short polynomials that the compiler vectorises, within a few units in
 * the last place of the exact values. No reassociating flags (no -ffast-math): a row's sum is
 * added in the same order on every call, whatever the number of threads, so results repeat.
 * NaN in gives NaN out, so a diverged step still shows in the loss.
 */
#include <stdint.h>
#include <string.h>

#define PARALLEL_MIN 32768 /* elements below which threads cost more than they save */
#define BLOCK 4096

/* e^x for x in [-87, 88]: x = k ln2 + r with |r| <= ln2 / 2, e^r by its Taylor series to r^7
 * (relative error below 1.1e-7), 2^k written into the exponent bits. NaN stays NaN. */
static inline float exp_core(float x) {
    const float log2e = 1.44269504f, ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-06f;
    float k = (x * log2e + 12582912.f) - 12582912.f; /* round to nearest: 1.5 * 2^23 */
    float r = (x - k * ln2_hi) - k * ln2_lo;
    float p = 1.f / 5040.f;
    p = p * r + 1.f / 720.f;
    p = p * r + 1.f / 120.f;
    p = p * r + 1.f / 24.f;
    p = p * r + 1.f / 6.f;
    p = p * r + 0.5f;
    p = p * r + 1.f;
    p = p * r + 1.f;
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* e^x for x <= 0, taken as e^-80 below -80: the terms it feeds are then below float rounding. */
static inline float exp_nonpositive(float x) { return exp_core(x < -80.f ? -80.f : x); }

/* e^x for any x: 0 below -87 (where e^x is subnormal), infinity above ln(FLT_MAX). */
static inline float exp_any(float x) {
    float e = exp_core(x < -87.f ? -87.f : (x > 88.f ? 88.f : x));
    return x < -87.f ? 0.f : (x > 88.72283f ? __builtin_inff() : e);
}

/* log1p(a) for a in [0, 1], given 1 / (2 + a): 2 atanh(t) with t = a / (2 + a) in [0, 1/3],
 * an odd series whose terms after t^15 are below float rounding (relative error < 2.3e-7). */
static inline float log1p_unit(float a, float inv_2a) {
    float t = a * inv_2a, t2 = t * t;
    float p = 1.f / 15.f;
    p = p * t2 + 1.f / 13.f;
    p = p * t2 + 1.f / 11.f;
    p = p * t2 + 1.f / 9.f;
    p = p * t2 + 1.f / 7.f;
    p = p * t2 + 1.f / 5.f;
    p = p * t2 + 1.f / 3.f;
    p = p * t2 + 1.f;
    return 2.f * t * p;
}

/* Bernoulli negative log-likelihood of images x under logits, and its gradient.
 *
 * logits (G, K, B, D): G members, K samples of z, B images, D pixels; x (G, B, D) in [0, 1].
 * rows[g, k, b] = sum_d softplus(l) - x l, and grad[g, k, b, d] = (sigmoid(l) - x) * scale.
 * grad may be logits itself: each element is read before it is written.
 * With a = e^-|l|: softplus(l) = max(l, 0) + log1p(a), sigmoid(l) = 1 / (1 + a) for l >= 0
 * and a / (1 + a) below; one division serves 1 / (1 + a) and 1 / (2 + a). */
void bernoulli_nll(const float *logits, const float *x, float *grad, float *rows, int64_t G,
                   int64_t K, int64_t B, int64_t D, float scale) {
    int64_t n = G * K * B;
#pragma omp parallel for schedule(static) if (n * D >= PARALLEL_MIN)
    for (int64_t r = 0; r < n; r++) {
        int64_t g = r / (K * B), b = r % B;
        const float *l = logits + r * D, *xr = x + (g * B + b) * D;
        float *out = grad + r * D;
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t d = 0; d < D; d++) {
            float v = l[d], xv = xr[d];
            float a = exp_nonpositive(v < 0.f ? v : -v);
            float q = 1.f / ((1.f + a) * (2.f + a));
            float inv_1a = q * (2.f + a);
            float relu = v > 0.f ? v : 0.f;
            sum += relu + log1p_unit(a, q * (1.f + a)) - xv * v;
            float sigmoid = v >= 0.f ? inv_1a : a * inv_1a;
            out[d] = (sigmoid - xv) * scale;
        }
        rows[r] = sum;
    }
}

/* softplus and its slope for the backward pass: h = log(1 + e^a), slope = sigmoid(a) = dh/da.
 * With t = e^-|a|: h = max(a, 0) + log1p(t), sigmoid(a) = 1 / (1 + t) for a >= 0 and
 * t / (1 + t) below; one exp and one division serve both, as in bernoulli_nll. */
void softplus_forward(const float *a, float *h, float *slope, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t stop = start + BLOCK < n ? start + BLOCK : n;
#pragma omp simd
        for (int64_t i = start; i < stop; i++) {
            float v = a[i];
            float t = exp_nonpositive(v < 0.f ? v : -v);
            float q = 1.f / ((1.f + t) * (2.f + t));
            float inv_1t = q * (2.f + t);
            h[i] = (v > 0.f ? v : 0.f) + log1p_unit(t, q * (1.f + t));
            slope[i] = v >= 0.f ? inv_1t : t * inv_1t;
        }
    }
}

/* tanh in place. Below |a| = 0.5 its odd Taylor series to a^15 (relative error < 1e-8 there);
 * above, (1 - t) / (1 + t) with t = e^-2|a| <= e^-1, which loses nothing to cancellation. */
void tanh_forward(float *a, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t stop = start + BLOCK < n ? start + BLOCK : n;
#pragma omp simd
        for (int64_t i = start; i < stop; i++) {
            float v = a[i], m = v < 0.f ? -v : v, m2 = m * m;
            float p = -929569.f / 638512875.f;
            p = p * m2 + 21844.f / 6081075.f;
            p = p * m2 - 1382.f / 155925.f;
            p = p * m2 + 62.f / 2835.f;
            p = p * m2 - 17.f / 315.f;
            p = p * m2 + 2.f / 15.f;
            p = p * m2 - 1.f / 3.f;
            p = p * m2 + 1.f;
            float t = exp_nonpositive(-2.f * m);
            float h = m < 0.5f ? m * p : (1.f - t) / (1.f + t);
            a[i] = v < 0.f ? -h : h;
        }
    }
}

/* The gradient through h = tanh(a), in place: grad *= 1 - h^2. */
void tanh_backward(float *grad, const float *h, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (int64_t start = 0; start < n; start += BLOCK) {
        int64_t stop = start + BLOCK < n ? start + BLOCK : n;
#pragma omp simd
        for (int64_t i = start; i < stop; i++) {
            grad[i] *= 1.f - h[i] * h[i];
        }
    }
}

/* The reparameterised sample of a VAE's latent code.
 *
 * heads (G, B, 2Z) holds mu then ln_var for each image; eps (G, K, B, Z) is the noise.
 * std (G, B, Z) = exp(ln_var / 2), and z (G, K, B, Z) = mu + eps * std. */
void latent_forward(const float *heads, const float *eps, float *z, float *std, int64_t G,
                    int64_t K, int64_t B, int64_t Z) {
    int64_t n = G * B;
#pragma omp parallel for schedule(static) if (n * K * Z >= PARALLEL_MIN)
    for (int64_t r = 0; r < n; r++) {
        int64_t g = r / B, b = r % B;
        const float *mu = heads + r * 2 * Z, *ln_var = mu + Z;
        float *sd = std + r * Z;
#pragma omp simd
        for (int64_t j = 0; j < Z; j++) sd[j] = exp_any(0.5f * ln_var[j]);
        for (int64_t k = 0; k < K; k++) {
            int64_t at = ((g * K + k) * B + b) * Z;
#pragma omp simd
            for (int64_t j = 0; j < Z; j++) z[at + j] = mu[j] + eps[at + j] * sd[j];
        }
    }
}

/* The gradient of the loss at the VAE's encoder heads, and the KL term.
 *
 * dz (G, K, B, Z) is the gradient at z; cs (G) = C / B weights each member's KL. Writes d_heads
 * (G, B, 2Z): d mu = sum_k dz + c mu, d ln_var = std / 2 sum_k dz eps + c (var - 1) / 2, and kl_rows (G, B):
 * KL(q(z|x) || N(0, I)) of each image, 1/2 sum_j mu^2 + var - ln_var - 1. */
void latent_backward(const float *heads, const float *eps, const float *std, const float *dz,
                     float *d_heads, float *kl_rows, int64_t G, int64_t K, int64_t B, int64_t Z,
                     const float *cs) {
    int64_t n = G * B;
#pragma omp parallel for schedule(static) if (n * K * Z >= PARALLEL_MIN)
    for (int64_t r = 0; r < n; r++) {
        int64_t g = r / B, b = r % B;
        const float *mu = heads + r * 2 * Z, *ln_var = mu + Z, *sd = std + r * Z;
        float *d_mu = d_heads + r * 2 * Z, *d_ln_var = d_mu + Z;
        const float c = cs[g];
#pragma omp simd
        for (int64_t j = 0; j < Z; j++) d_mu[j] = d_ln_var[j] = 0.f;
        for (int64_t k = 0; k < K; k++) {
            int64_t at = ((g * K + k) * B + b) * Z;
#pragma omp simd
            for (int64_t j = 0; j < Z; j++) {
                d_mu[j] += dz[at + j];
                d_ln_var[j] += dz[at + j] * eps[at + j];
            }
        }
        float kl = 0.f;
#pragma omp simd reduction(+ : kl)
        for (int64_t j = 0; j < Z; j++) {
            float var = sd[j] * sd[j];
            d_mu[j] += c * mu[j];
            d_ln_var[j] = 0.5f * sd[j] * d_ln_var[j] + 0.5f * c * (var - 1.f);
            kl += mu[j] * mu[j] + var - ln_var[j] - 1.f;
        }
        kl_rows[r] = 0.5f * kl;
    }
}
