/*
 * The kernels of overlap_kernel.c for one dtype: included once per dtype with T (the element type), NAME(x)
 * (x with the dtype's suffix) and EXP (exp of a non-positive T) defined. Part of monai_jdt (Apache-2.0).
 *
 * Each tile helper takes the tile's length k; the callers pass the constant TILE for full tiles (the helpers are
 * inlined, so the full tiles are vectorised) and the remainder for an image's last tile.
 */

/* s = softmax over the C rows (stride N) or sigmoid of z, for k voxels; s has rows of TILE values. */
ALWAYS_INLINE void NAME(activate)(const T *restrict z, T *restrict s, int64_t C, int64_t N, int64_t k, int softmax) {
    if (!softmax) {
        for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < k; ++i) {
                T v = z[c * N + i];
                T e = EXP(v < 0 ? v : -v);
                T inv = 1 / (1 + e);
                s[c * TILE + i] = v < 0 ? e * inv : inv;
            }
        return;
    }
    T m[TILE], sum[TILE];
    for (int64_t i = 0; i < k; ++i) m[i] = z[i], sum[i] = 0;
    for (int64_t c = 1; c < C; ++c)
        for (int64_t i = 0; i < k; ++i) m[i] = z[c * N + i] > m[i] ? z[c * N + i] : m[i];
    for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < k; ++i) {
            T e = EXP(z[c * N + i] - m[i]);
            s[c * TILE + i] = e;
            sum[i] += e;
        }
    for (int64_t i = 0; i < k; ++i) sum[i] = 1 / sum[i];
    for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < k; ++i) s[c * TILE + i] *= sum[i];
}

/* The tile's weights (mask or 1) and, for an index map, its labels as T. */
ALWAYS_INLINE void NAME(tile_inputs)(const T *restrict mask, const uint8_t *restrict label, int64_t k,
                                     T *restrict w, T *restrict lab) {
    for (int64_t i = 0; i < k; ++i) w[i] = mask ? mask[i] : 1;
    if (label)
        for (int64_t i = 0; i < k; ++i) lab[i] = label[i];
}

/* Per-thread scratch of the forward: lanes of the 3 C sums, the 2 C maxima and the target's min, max, NaN count. */
typedef struct {
    T *s, *w, *lab, *acc, *top, *lo, *hi, *nan;
    int want_max;
} NAME(scratch);

ALWAYS_INLINE void NAME(forward_tile)(const T *restrict z, T *restrict out, const T *restrict dense,
                                      const uint8_t *restrict label, const T *restrict mask, int64_t C, int64_t N,
                                      int64_t k, int softmax, NAME(scratch) S) {
    T *restrict s = S.s, *restrict w = S.w, *restrict lab = S.lab;
    T *restrict lo = S.lo, *restrict hi = S.hi, *restrict nan = S.nan;
    NAME(activate)(z, s, C, N, k, softmax);
    NAME(tile_inputs)(mask, label, k, w, lab);
    for (int64_t c = 0; c < C; ++c) {
        T *restrict sc = s + c * TILE, *restrict oc = out + c * N;
        T *restrict aP = S.acc + 3 * c * TILE, *restrict aG = aP + TILE, *restrict aD = aG + TILE;
        for (int64_t i = 0; i < k; ++i) {
            oc[i] = sc[i];
            aP[i] += w[i] * sc[i];
        }
        if (label) {
            for (int64_t i = 0; i < k; ++i) {
                T y = lab[i] == (T)c ? 1 : 0;
                aG[i] += y;
                aD[i] += w[i] * (y + sc[i] - 2 * y * sc[i]); /* |s - y| for y in {0, 1} */
            }
        } else {
            const T *restrict y = dense + c * N;
            for (int64_t i = 0; i < k; ++i) {
                T d = sc[i] - y[i];
                aG[i] += w[i] * y[i];
                aD[i] += w[i] * (d < 0 ? -d : d);
                lo[i] = y[i] < lo[i] ? y[i] : lo[i];
                hi[i] = y[i] > hi[i] ? y[i] : hi[i];
                nan[i] += y[i] != y[i] ? 1 : 0;
            }
        }
        if (!S.want_max) continue;
        T *restrict tmax = S.top + c * TILE, *restrict pmax = S.top + (C + c) * TILE;
        for (int64_t i = 0; i < k; ++i) {
            T vt = label ? 0 : w[i] * dense[c * N + i], vp = w[i] * sc[i];
            tmax[i] = vt > tmax[i] ? vt : tmax[i];
            pmax[i] = vp > pmax[i] ? vp : pmax[i];
        }
    }
}

/* Add the lanes of `rows` sums into sums (float64) and clear them. */
static void NAME(fold)(T *restrict acc, int64_t rows, double *restrict sums) {
    for (int64_t j = 0; j < rows; ++j) {
        double total = 0;
        for (int64_t i = 0; i < TILE; ++i) total += acc[j * TILE + i];
        sums[j] += total;
    }
    memset(acc, 0, (size_t)rows * TILE * sizeof(T));
}

/* The forward over image b's tiles [tile0, tile1). */
static void NAME(forward_run)(const T *logits, T *probs, const T *dense, const uint8_t *label, const T *mask,
                              int64_t C, int64_t N, int64_t b, int64_t tile0, int64_t tile1, int softmax,
                              NAME(scratch) S, double *sums) {
    for (int64_t tile = tile0; tile < tile1; ++tile) {
        int64_t n0 = tile * TILE, at = b * C * N + n0;
        const T *d = dense ? dense + at : NULL, *w = mask ? mask + b * N + n0 : NULL;
        const uint8_t *l = label ? label + b * N + n0 : NULL;
        if (N - n0 >= TILE)
            NAME(forward_tile)(logits + at, probs + at, d, l, w, C, N, TILE, softmax, S);
        else
            NAME(forward_tile)(logits + at, probs + at, d, l, w, C, N, N - n0, softmax, S);
        if ((tile - tile0 + 1) % FOLD == 0 || tile + 1 == tile1) NAME(fold)(S.acc, 3 * C, sums);
    }
}

/* Per (image, class): P, G, D into sums[t] (3 values each) and the maxima into maxima[t] (2 C per image, may be
 * NULL); per thread t the target's min, max and NaN count into range[3 t .. 3 t + 2]. sums, maxima and range hold
 * `threads` slices, set by the caller to 0 (range: +inf, -inf, 0). */
void NAME(jdt_overlap_forward)(const T *logits, T *probs, const T *dense, const uint8_t *label, const T *mask,
                               int64_t B, int64_t C, int64_t N, int softmax, int threads, double *sums, T *maxima,
                               T *range) {
    int64_t per_image = (N + TILE - 1) / TILE, total = B * per_image;
#pragma omp parallel num_threads(threads)
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t lo = total * t / nt, hi = total * (t + 1) / nt;
        T s[C * TILE], w[TILE], lab[TILE], acc[3 * C * TILE], top[2 * C * TILE], rlo[TILE], rhi[TILE], nan[TILE];
        NAME(scratch) S = {s, w, lab, acc, top, rlo, rhi, nan, maxima != NULL};
        memset(acc, 0, sizeof acc);
        memset(top, 0, sizeof top);
        for (int64_t i = 0; i < TILE; ++i) rlo[i] = range[3 * t], rhi[i] = range[3 * t + 1], nan[i] = 0;
        while (lo < hi) {
            int64_t b = lo / per_image, tile0 = lo % per_image;
            int64_t tile1 = per_image < tile0 + hi - lo ? per_image : tile0 + hi - lo;
            NAME(forward_run)(logits, probs, dense, label, mask, C, N, b, tile0, tile1, softmax, S,
                              sums + (t * B + b) * 3 * C);
            for (int64_t j = 0; maxima && j < 2 * C; ++j) {
                T *slot = maxima + (t * B + b) * 2 * C + j;
                for (int64_t i = 0; i < TILE; ++i) *slot = top[j * TILE + i] > *slot ? top[j * TILE + i] : *slot;
            }
            memset(top, 0, sizeof top);
            lo += tile1 - tile0;
        }
        for (int64_t i = 0; i < TILE; ++i) {
            range[3 * t] = rlo[i] < range[3 * t] ? rlo[i] : range[3 * t];
            range[3 * t + 1] = rhi[i] > range[3 * t + 1] ? rhi[i] : range[3 * t + 1];
            range[3 * t + 2] += nan[i];
        }
    }
}

ALWAYS_INLINE void NAME(backward_tile)(const T *s, T *grad, const T *restrict dense, const uint8_t *restrict label,
                                       const T *restrict mask, int64_t C, int64_t N, int64_t k, int softmax,
                                       const T *restrict gp, const T *restrict gd, T *restrict h, T *restrict w,
                                       T *restrict lab) {
    T dot[TILE];
    NAME(tile_inputs)(mask, label, k, w, lab);
    for (int64_t i = 0; i < k; ++i) dot[i] = 0;
    for (int64_t c = 0; c < C; ++c) {
        const T *restrict sc = s + c * N;
        T *restrict hc = h + c * TILE, p = gp[c], d = gd[c];
        if (label)
            for (int64_t i = 0; i < k; ++i) hc[i] = w[i] * (lab[i] == (T)c ? p - d : p + d);
        else
            for (int64_t i = 0; i < k; ++i) {
                T y = dense[c * N + i];
                hc[i] = w[i] * (sc[i] > y ? p + d : (sc[i] < y ? p - d : p));
            }
        if (softmax)
            for (int64_t i = 0; i < k; ++i) {
                hc[i] *= sc[i];
                dot[i] += hc[i];
            }
        else
            for (int64_t i = 0; i < k; ++i) hc[i] *= sc[i] * (1 - sc[i]);
    }
    /* grad may be s itself: every read of s in this tile came before */
    for (int64_t c = 0; c < C; ++c) {
        T *gc = grad + c * N, *restrict hc = h + c * TILE;
        const T *sc = s + c * N;
        if (softmax)
            for (int64_t i = 0; i < k; ++i) gc[i] = hc[i] - sc[i] * dot[i];
        else
            for (int64_t i = 0; i < k; ++i) gc[i] = hc[i];
    }
}

/* dL/dz into grad (which may be probs) from gp = dL/dP and gd = dL/dD, each (B, C). */
void NAME(jdt_overlap_backward)(const T *probs, T *grad, const T *dense, const uint8_t *label, const T *mask,
                                int64_t B, int64_t C, int64_t N, int softmax, int threads, const T *gp, const T *gd) {
    int64_t per_image = (N + TILE - 1) / TILE, total = B * per_image;
#pragma omp parallel num_threads(threads)
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        T h[C * TILE], w[TILE], lab[TILE];
        for (int64_t it = total * t / nt; it < total * (t + 1) / nt; ++it) {
            int64_t b = it / per_image, n0 = (it % per_image) * TILE, at = b * C * N + n0;
            const T *d = dense ? dense + at : NULL, *m = mask ? mask + b * N + n0 : NULL;
            const uint8_t *l = label ? label + b * N + n0 : NULL;
            if (N - n0 >= TILE)
                NAME(backward_tile)(probs + at, grad + at, d, l, m, C, N, TILE, softmax, gp + b * C, gd + b * C, h, w,
                                    lab);
            else
                NAME(backward_tile)(probs + at, grad + at, d, l, m, C, N, N - n0, softmax, gp + b * C, gd + b * C, h,
                                    w, lab);
        }
    }
}
