/* The greedy k-means++ that draws the k-means starts (loaded by vaelab/kernels.py).
 *
 * scikit-learn's _kmeans_plusplus given its random numbers: the first centre is a given
 * point; each later one is the best of `trials` candidate points, each drawn with probability
 * proportional to its squared distance to the nearest centre so far (the first index whose
 * running sum of those distances reaches uniform * their total), the best being the one that
 * leaves the least total, the first of equal ones. Squared distances by ||x||^2 + ||y||^2 -
 * 2 x.y, at least 0. Each start runs on its own; the points are held transposed, so one
 * vector holds a coordinate of LANES points and the distances of 2 LANES points to 4
 * candidates are 8 running sums in registers.
 */
#include "kmeans.h"

#define BLOCK (2 * LANES) /* points per block */

typedef struct {
    const double *x, *xt, *xsq; /* points (m, d), the same transposed (d, mp), norms (mp) */
    int64_t m, mp, d;           /* mp: m rounded up to whole blocks, the rest zeros */
} Cloud;

/* The first index whose running sum reaches target (torch.searchsorted), at most m - 1. */
static int64_t search(const double *cum, int64_t m, double target) {
    int64_t lo = 0, hi = m;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cum[mid] < target) lo = mid + 1;
        else hi = mid;
    }
    return lo < m ? lo : m - 1;
}

/* For 4 candidates ids: each point's squared distance to the candidate, or its closest if
 * nearer, in cand (4, mp); returns their totals in pots (4). cb holds (d, 4) vectors of -2
 * times the candidates' coordinates. */
static void candidates(const Cloud *q, const int64_t *ids, const double *closest, double *cb,
                       double *cand, double *pots) {
    int64_t d = q->d, mp = q->mp;
    for (int64_t e = 0; e < d; e++)
        for (int64_t t = 0; t < 4; t++) store(cb + (e * 4 + t) * LANES, splat(-2.0 * q->x[ids[t] * d + e]));
    vec sums[4] = {{0.0}};
    for (int64_t i = 0; i < mp; i += BLOCK) {
        vec acc[2][4] = {{{0.0}}};
        for (int64_t e = 0; e < d; e++) {
            vec x0 = load(q->xt + e * mp + i), x1 = load(q->xt + e * mp + i + LANES);
            for (int64_t t = 0; t < 4; t++) {
                vec c = load(cb + (e * 4 + t) * LANES);
                acc[0][t] += x0 * c, acc[1][t] += x1 * c;
            }
        }
        for (int64_t h = 0; h < 2; h++) {
            int64_t at = i + h * LANES;
            vec xsq = load(q->xsq + at), near = load(closest + at);
            for (int64_t t = 0; t < 4; t++) {
                vec v = (splat(q->xsq[ids[t]]) + xsq) + acc[h][t];
                v = pick(v > splat(0.0), v, splat(0.0));
                v = pick(v < near, v, near);
                store(cand + t * mp + at, v);
                sums[t] += v; /* the padding adds 0: its closest is 0 */
            }
        }
    }
    for (int64_t t = 0; t < 4; t++) pots[t] = total(sums[t]);
}

/* One start's centres c (k, d) from point `first` and uniforms (k - 1, trials). buf holds
 * (2 + tp) mp + 16 d + tp doubles, tp = trials rounded up to 4. */
static void plusplus_one(const Cloud *q, int64_t k, int64_t first, const double *uniforms,
                         int64_t trials, double *c, double *buf) {
    int64_t m = q->m, mp = q->mp, d = q->d, tp = lanes(trials), ids[tp];
    double *closest = buf, *cum = closest + mp, *cand = cum + mp, *cb = cand + tp * mp;
    double *pots = cb + 16 * d, pot = 0.0;
    memcpy(c, q->x + first * d, sizeof(double) * d);
    memset(closest, 0, sizeof(double) * mp);
    for (int64_t i = 0; i < m; i++) {
        double dot = 0.0;
        for (int64_t e = 0; e < d; e++) dot += q->x[first * d + e] * q->x[i * d + e];
        double v = (q->xsq[first] + q->xsq[i]) - 2.0 * dot;
        closest[i] = v > 0.0 ? v : 0.0;
        pot += closest[i];
    }
    for (int64_t n = 1; n < k; n++) {
        double running = 0.0;
        for (int64_t i = 0; i < m; i++) cum[i] = running += closest[i];
        for (int64_t t = 0; t < tp; t++)
            ids[t] = t < trials ? search(cum, m, uniforms[(n - 1) * trials + t] * pot) : ids[0];
        for (int64_t t = 0; t < tp; t += 4)
            candidates(q, ids + t, closest, cb, cand + t * mp, pots + t);
        int64_t best = 0;
        for (int64_t t = 1; t < trials; t++) best = pots[t] < pots[best] ? t : best;
        memcpy(closest, cand + best * mp, sizeof(double) * mp);
        pot = pots[best];
        memcpy(c + n * d, q->x + ids[best] * d, sizeof(double) * d);
    }
}

/* k-means++ centres (r, k, d) of the points x (m, d) for r starts: first (r) and uniforms
 * (r, k - 1, trials). Returns 0 if memory ran out. */
int kmeans_plusplus(const double *x, const int64_t *first, const double *uniforms,
                    double *centres, int64_t m, int64_t d, int64_t k, int64_t r, int64_t trials) {
    int64_t mp = (m + BLOCK - 1) / BLOCK * BLOCK, tp = lanes(trials);
    double *xt = calloc(d * mp + mp, sizeof(double));
    if (!xt) return 0;
    double *xsq = xt + d * mp;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t e = 0; e < d; e++) {
            xt[e * mp + i] = x[i * d + e];
            xsq[i] += x[i * d + e] * x[i * d + e];
        }
    }
    Cloud q = {x, xt, xsq, m, mp, d};
    int failed = 0;
#pragma omp parallel if (r > 1)
    {
        double *buf = malloc(sizeof(double) * ((2 + tp) * mp + 16 * d + tp));
        if (!buf) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t s = 0; s < r; s++) {
            if (buf)
                plusplus_one(&q, k, first[s], uniforms + s * (k - 1) * trials, trials,
                             centres + s * k * d, buf);
        }
        free(buf);
    }
    free(xt);
    return !failed;
}
