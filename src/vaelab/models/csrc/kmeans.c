/* k-means for the clustering experiment (loaded by vaelab/kernels.py with kernels.c).
 *
 * scikit-learn's Lloyd from given starts (the greedy k-means++ that draws them is in
 * kmeanspp.c), in double precision. Each start runs on its own, the starts spread over torch's OpenMP threads, so a
 * start's result does not depend on how many threads there are or which starts run beside it.
 *
 * The E-step gives Lloyd's labels, the argmin over j of ||c_j||^2 - 2 x.c_j (the first of
 * equal values), but computes a point's values only where Hamerly's bounds cannot show that
 * it keeps its centre: an upper bound u on the distance to its centre and a lower bound l on
 * the distance to every other, moved each iteration by how far the centres moved. A point
 * keeps its centre if u + slack < max(l, half the distance from its centre to the nearest
 * other). The slack is wide enough that the formula, off from the squared distance by at most
 * delta in floating point, also puts that centre first (slack^2 > 2 delta), so the labels are
 * those of the full E-step at every iteration. The M-step keeps each cluster's sum and count
 * and moves only the points whose label changed.
 */
#include "kmeans.h"

#define MAX_LANES 16 /* up to this many centres, a point's values stay in registers */

typedef struct {
    const double *x, *xsq; /* points (m, d) and their squared norms */
    int64_t m, d, k, kp;   /* kp: k rounded up to whole vectors */
    double delta, slack;
} Points;

typedef struct {
    double *ct;            /* (d, kp): -2 c transposed, 0 past k */
    double *cm;            /* (k, d): -2 c */
    double *csq;           /* (kp): ||c||^2, infinite past k */
    double *hcc;           /* (k, kp): half the distance between two centres, infinite past k */
    double *half;          /* (k): half the distance to the nearest other centre */
    double *moved;         /* (kp): how far each centre has moved in all, 0 past k */
    double moved_most;     /* the sum over iterations of the farthest any centre moved */
    double *u, *lmin, *l;  /* (m), (m), (m, kp): the bounds, as set plus moved then */
    double *sums, *cnew;   /* (k, d): each cluster's sum by the labels; the M-step's */
    double *f, *far;       /* (kp), (m): scratch */
    int64_t *counts, *cnt; /* (k): each cluster's size by the labels; the M-step's */
    int64_t *empty;        /* (k) */
} Work;

static double sq_dist(const double *a, const double *b, int64_t d) {
    double s = 0.0;
    for (int64_t j = 0; j < d; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

/* x.y, in two vectors of running sums. */
KERNEL double dot(const double *x, const double *y, int64_t d) {
    vec a = {0.0}, b = {0.0};
    int64_t e = 0;
    for (; e + 2 * LANES <= d; e += 2 * LANES) {
        a += load(x + e) * load(y + e);
        b += load(x + e + LANES) * load(y + e + LANES);
    }
    if (e + LANES <= d) a += load(x + e) * load(y + e), e += LANES;
    a += b;
    double s = total(a);
    for (; e < d; e++) s += x[e] * y[e];
    return s;
}

/* f[j] = x.ct[:, j] for the kp lanes of ct (d, kp), kp at most MAX_LANES. */
KERNEL void cross(const double *x, const double *ct, int64_t d, int64_t kp, double *f) {
    vec acc[MAX_LANES / LANES] = {{0.0}};
    int64_t e = 0, nv = kp / LANES;
    for (; e + 2 <= d; e += 2) {
        vec v0 = splat(x[e]), v1 = splat(x[e + 1]);
        for (int64_t j = 0; j < nv; j++)
            acc[j] += v0 * load(ct + e * kp + j * LANES) + v1 * load(ct + (e + 1) * kp + j * LANES);
    }
    if (e < d)
        for (int64_t j = 0; j < nv; j++) acc[j] += splat(x[e]) * load(ct + e * kp + j * LANES);
    for (int64_t j = 0; j < nv; j++) store(f + j * LANES, acc[j]);
}

/* Bounds on the distance whose square the formula puts at xsq + v. */
KERNEL double upper(const Points *p, double xsq, double v) {
    double s = xsq + v + p->delta;
    return sqrt(s > 0.0 ? s : 0.0);
}
KERNEL double lower(const Points *p, double xsq, double v) {
    double s = xsq + v - p->delta;
    return sqrt(s > 0.0 ? s : 0.0);
}

/* The centres in the E-step's layouts, and the distances between them. */
static void prepare(const Points *p, Work *w, const double *c) {
    int64_t d = p->d, k = p->k, kp = p->kp;
    for (int64_t j = 0; j < kp; j++) {
        w->csq[j] = j < k ? 0.0 : INFINITY;
        for (int64_t e = 0; e < d; e++) {
            double v = j < k ? c[j * d + e] : 0.0;
            w->ct[e * kp + j] = -2.0 * v;
            if (j < k) w->cm[j * d + e] = -2.0 * v;
            w->csq[j] += v * v;
        }
    }
    for (int64_t j = 0; j < k * kp; j++) w->hcc[j] = INFINITY;
    for (int64_t j = 0; j < k; j++) w->half[j] = INFINITY;
    for (int64_t j = 0; j < k; j++) {
        for (int64_t q = j + 1; q < k; q++) {
            double h = 0.5 * sqrt(sq_dist(c + j * d, c + q * d, d));
            w->hcc[j * kp + q] = w->hcc[q * kp + j] = h;
            w->half[j] = fmin(w->half[j], h);
            w->half[q] = fmin(w->half[q], h);
        }
    }
}

/* Point i leaves cluster a for b: the sums and counts follow. */
KERNEL void move(const Points *p, Work *w, int64_t i, int64_t a, int64_t b) {
    const double *xi = p->x + i * p->d;
    double *from = w->sums + a * p->d, *to = w->sums + b * p->d;
    for (int64_t e = 0; e < p->d; e++) from[e] -= xi[e], to[e] += xi[e];
    w->counts[a] -= 1, w->counts[b] += 1;
}

/* The least lower bound now of point i's distances to the centres other than b. */
KERNEL double least_other(const Work *w, const double *l, int64_t b, int64_t kp) {
    vec least = splat(INFINITY);
    for (int64_t j = 0; j < kp; j += LANES) {
        vec now = load(l + j) - load(w->moved + j);
        mask own = (vec){0.0, 1.0, 2.0, 3.0} + splat((double)j) == splat((double)b);
        least = pick(own, least, pick(now < least, now, least));
    }
    double a = least[0] < least[1] ? least[0] : least[1], b2 = least[2] < least[3] ? least[2] : least[3];
    return a < b2 ? a : b2;
}

/* Every point's label from scratch, its bounds, and the sums and counts. */
KERNEL void assign_all(const Points *p, Work *w, int64_t *labels, int64_t kp) {
    memset(w->sums, 0, sizeof(double) * p->k * p->d);
    memset(w->counts, 0, sizeof(int64_t) * p->k);
    for (int64_t i = 0; i < p->m; i++) {
        double xsq = p->xsq[i], best = INFINITY, *l = w->l + i * kp;
        const double *xi = p->x + i * p->d;
        cross(xi, w->ct, p->d, kp, w->f);
        int64_t a = 0;
        for (int64_t j = 0; j < kp; j++) {
            double v = w->csq[j] + w->f[j];
            l[j] = j < p->k ? lower(p, xsq, v) + w->moved[j] : INFINITY;
            if (v < best) best = v, a = j;
        }
        w->u[i] = upper(p, xsq, best) - w->moved[a];
        w->lmin[i] = least_other(w, l, a, kp) + w->moved_most;
        for (int64_t e = 0; e < p->d; e++) w->sums[a * p->d + e] += xi[e];
        w->counts[a] += 1;
        labels[i] = a;
    }
}

/* The centres not ruled out for point i at distance reach from its own centre a: a bit each. */
KERNEL unsigned open_centres(const Work *w, const double *l, int64_t a, double reach,
                             int64_t kp) {
    unsigned bits = 0;
    const double *h = w->hcc + a * kp;
    for (int64_t j = 0; j < kp; j += LANES) {
        vec now = load(l + j) - load(w->moved + j);
        mask open = (now <= splat(reach)) & (load(h + j) <= splat(reach));
        bits |= bits_of(open) << j;
    }
    return bits;
}

/* Point i's label where the bounds do not keep it at a: its own centre's value tightens u,
 * then the centres not ruled out are scored in order, the nearest so far ruling out more. */
KERNEL int64_t reassign(const Points *p, Work *w, int64_t i, int64_t a, double u, int64_t kp) {
    const double *xi = p->x + i * p->d, xsq = p->xsq[i];
    double *l = w->l + i * kp;
    unsigned bits = open_centres(w, l, a, u + p->slack, kp);
    int64_t b = a;
    if (bits) {
        double best = w->csq[a] + dot(xi, w->cm + a * p->d, p->d), reach;
        u = upper(p, xsq, best), reach = u + p->slack;
        l[a] = lower(p, xsq, best) + w->moved[a];
        bits &= open_centres(w, l, a, reach, kp);
        while (bits) {
            int64_t j = __builtin_ctz(bits);
            bits &= bits - 1;
            if (l[j] - w->moved[j] > reach || w->hcc[b * kp + j] > reach) continue;
            double v = w->csq[j] + dot(xi, w->cm + j * p->d, p->d);
            l[j] = lower(p, xsq, v) + w->moved[j];
            if (v < best || (v == best && j < b)) best = v, b = j, u = upper(p, xsq, v), reach = u + p->slack;
        }
    }
    w->u[i] = u - w->moved[b];
    w->lmin[i] = least_other(w, l, b, kp) + w->moved_most;
    return b;
}

/* The labels after the centres moved by w->drift, scoring only where the bounds fail;
 * returns how many changed. */
KERNEL int64_t assign_bounded(const Points *p, Work *w, int64_t *labels, int64_t kp) {
    int64_t changed = 0;
    for (int64_t i = 0; i < p->m; i++) {
        int64_t a = labels[i];
        double u = w->u[i] + w->moved[a], l = w->lmin[i] - w->moved_most;
        if (u + p->slack < (l > w->half[a] ? l : w->half[a])) continue;
        int64_t b = reassign(p, w, i, a, u, kp);
        if (b != a) move(p, w, i, a, b), labels[i] = b, changed++;
    }
    return changed;
}

/* Empty clusters take the points farthest from their centres c, the farthest first (the first
 * of equal distances), each leaving its own cluster's sum: scikit-learn's relocation. */
static void relocate(const Points *p, Work *w, const double *c, const int64_t *labels) {
    int64_t d = p->d, empty = 0;
    for (int64_t i = 0; i < p->m; i++)
        w->far[i] = sq_dist(p->x + i * d, c + labels[i] * d, d);
    for (int64_t j = 0; j < p->k; j++) {
        if (w->cnt[j] == 0) w->empty[empty++] = j;
    }
    for (int64_t n = 0; n < empty; n++) {
        int64_t j = w->empty[n], best = 0;
        for (int64_t i = 1; i < p->m; i++) best = w->far[i] > w->far[best] ? i : best;
        w->far[best] = -1.0; /* taken */
        const double *xb = p->x + best * d;
        int64_t source = labels[best];
        for (int64_t e = 0; e < d; e++) {
            w->cnew[source * d + e] -= xb[e];
            w->cnew[j * d + e] = xb[e];
        }
        w->cnt[source] -= 1;
        w->cnt[j] = 1;
    }
}

/* The M-step: c becomes the means of its clusters; returns the total squared shift and adds
 * how far each centre moved to w->moved. */
static double update(const Points *p, Work *w, double *c, const int64_t *labels) {
    int64_t d = p->d, k = p->k, relocated = 0;
    memcpy(w->cnew, w->sums, sizeof(double) * k * d);
    memcpy(w->cnt, w->counts, sizeof(int64_t) * k);
    for (int64_t j = 0; j < k && !relocated; j++) relocated = w->cnt[j] == 0;
    if (relocated) relocate(p, w, c, labels);
    double shift = 0.0, most = 0.0;
    for (int64_t j = 0; j < k; j++) {
        double n = w->cnt[j] > 0 ? (double)w->cnt[j] : 1.0, moved = 0.0;
        for (int64_t e = 0; e < d; e++) {
            double v = w->cnew[j * d + e] / n;
            moved += (v - c[j * d + e]) * (v - c[j * d + e]);
            c[j * d + e] = v;
        }
        double step = sqrt(moved);
        w->moved[j] += step;
        most = step > most ? step : most;
        shift += moved;
    }
    w->moved_most += most;
    return shift;
}

/* One start: centres c (k, d) in and out, labels (m), its inertia and iterations. */
KERNEL void lloyd_one(const Points *p, Work *w, double *c, int64_t *labels, double *inertia,
                      int64_t *iterations, double tol, int64_t max_iter, int64_t kp) {
    int strict = 0;
    memset(w->moved, 0, sizeof(double) * kp);
    w->moved_most = 0.0;
    *iterations = 0;
    for (int64_t it = 1; it <= max_iter; it++) {
        prepare(p, w, c);
        int64_t changed = p->m; /* from no labels at all */
        if (it == 1) assign_all(p, w, labels, kp);
        else changed = assign_bounded(p, w, labels, kp);
        double shift = update(p, w, c, labels);
        *iterations = it;
        if (changed == 0) {
            strict = 1;
            break;
        }
        if (shift <= tol) break;
    }
    if (!strict) { /* labels that match the final centres */
        prepare(p, w, c);
        if (*iterations == 0) assign_all(p, w, labels, kp); /* no bounds yet */
        else assign_bounded(p, w, labels, kp);
    }
    double total = 0.0;
    for (int64_t i = 0; i < p->m; i++)
        total += sq_dist(p->x + i * p->d, c + labels[i] * p->d, p->d);
    *inertia = total;
}

static void lloyd_start(const Points *p, Work *w, double *c, int64_t *labels, double *inertia,
                        int64_t *iterations, double tol, int64_t max_iter) {
    switch (p->kp) { /* the number of lanes known to the compiler */
    case 4: lloyd_one(p, w, c, labels, inertia, iterations, tol, max_iter, 4); break;
    case 8: lloyd_one(p, w, c, labels, inertia, iterations, tol, max_iter, 8); break;
    case 12: lloyd_one(p, w, c, labels, inertia, iterations, tol, max_iter, 12); break;
    default: lloyd_one(p, w, c, labels, inertia, iterations, tol, max_iter, 16); break;
    }
}

static Points points_of(const double *x, const double *centres, int64_t m, int64_t d,
                        int64_t k, int64_t r, double *xsq) {
    double r2 = 0.0;
    for (int64_t i = 0; i < m; i++) {
        xsq[i] = 0.0;
        for (int64_t e = 0; e < d; e++) xsq[i] += x[i * d + e] * x[i * d + e];
        r2 = fmax(r2, xsq[i]);
    }
    for (int64_t j = 0; j < r * k; j++) { /* starts need not be points */
        double s = 0.0;
        for (int64_t e = 0; e < d; e++) s += centres[j * d + e] * centres[j * d + e];
        r2 = fmax(r2, s);
    }
    /* |xsq + ||c||^2 - 2 x.c - |x - c|^2| <= (d + 4) EPS (|x| + |c|)^2 <= (d + 4) EPS 4 r2 */
    double delta = 16.0 * (double)(d + 4) * EPS * r2;
    Points p = {x, xsq, m, d, k, lanes(k), delta, 4.0 * sqrt(delta)};
    return p;
}

static int work_alloc(Work *w, const Points *p) {
    int64_t m = p->m, d = p->d, k = p->k, kp = p->kp;
    int64_t n = 2 * d * kp + 2 * k * d + k * kp + 3 * kp + k + (kp + 3) * m;
    double *block = malloc(sizeof(double) * n);
    w->counts = malloc(sizeof(int64_t) * 3 * k);
    if (!block || !w->counts) {
        free(block), free(w->counts);
        return 0;
    }
    w->ct = block, w->cm = w->ct + d * kp, w->sums = w->cm + d * kp, w->cnew = w->sums + k * d;
    w->hcc = w->cnew + k * d, w->csq = w->hcc + k * kp, w->f = w->csq + kp;
    w->moved = w->f + kp, w->half = w->moved + kp, w->u = w->half + k, w->lmin = w->u + m;
    w->far = w->lmin + m, w->l = w->far + m;
    w->cnt = w->counts + k, w->empty = w->cnt + k;
    return 1;
}

/* Lloyd from each of r starts: centres (r, k, d) in and out, labels (r, m), inertia (r),
 * iterations (r). x (m, d) is centred; xsq (m) is scratch. k is at most MAX_LANES. Returns 0
 * if memory ran out. */
int kmeans_lloyd(const double *x, double *xsq, double *centres, int64_t *labels, double *inertia,
                 int64_t *iterations, int64_t m, int64_t d, int64_t k, int64_t r, double tol,
                 int64_t max_iter) {
    Points p = points_of(x, centres, m, d, k, r, xsq);
    int failed = 0;
#pragma omp parallel if (r > 1)
    {
        Work w;
        int ok = work_alloc(&w, &p);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t s = 0; s < r; s++) {
            if (ok)
                lloyd_start(&p, &w, centres + s * k * d, labels + s * m, inertia + s,
                            iterations + s, tol, max_iter);
        }
        if (ok) free(w.ct), free(w.counts);
    }
    return !failed;
}
