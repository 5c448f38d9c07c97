/*
 * Fused softmax/sigmoid + L1 cardinalities of the soft-label overlap losses (DML, JML, CTL), forward and analytic
 * backward, for float32 and float64 tensors on CPU. Part of monai_jdt (Apache-2.0).
 *
 * Built on first use by monai_jdt/losses/functional/_native/_build.py and linked against the OpenMP runtime that
 * torch itself loaded, so each pass is one parallel region of torch's own OpenMP team (no second thread pool).
 *
 * Layout: logits, probabilities and a dense target are (B, C, N) contiguous; an index map is (B, N) uint8 with the
 * unused label C on masked voxels; the mask is (B, N) with 0/1 values in the input's dtype.
 *
 * Forward, per image b and class c (w = mask, s = activation, y = target):
 *     P = sum_n w s,   G = sum_n w y,   D = sum_n w |s - y|,   tmax = max_n w y,   pmax = max_n w s
 * Backward, from gp = dL/dP and gd = dL/dD:
 *     h = w (gp + gd sign(s - y))        (index map: sign(s - y) = 1 - 2 y)
 *     dL/dz = s h - s sum_c s h          (softmax)      dL/dz = h s (1 - s)      (sigmoid)
 *
 * The voxels are walked in tiles of TILE values per class; per-lane partial sums in the input's dtype are folded
 * into float64 every FOLD tiles and at the end of each image's run.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define TILE 64
#define FOLD 64

/* exp(x) for x <= 0 in float32: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by its Taylor series to degree 7
 * (truncation error below 1e-8 relative) and 2^n built in the exponent bits. x below -87 gives exp(-87). */
static inline float exp_nonpositive_f32(float x) {
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer in the low bits */
    x = x < -87.0f ? -87.0f : x;
    float t = x * 1.44269504088896341f + round_magic;
    float n = t - round_magic;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f; /* ln 2 = 0.693359375 - 2.12194440e-4 (two-part constant) */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t ti, si;
    memcpy(&ti, &t, sizeof ti);
    si = (ti - 0x4B400000 + 127) << 23; /* low bits of t hold n; 2^n as a float's bits */
    float scale;
    memcpy(&scale, &si, sizeof scale);
    return p * scale;
}

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define T float
#define NAME(x) x##_f32
#define EXP exp_nonpositive_f32
#include "overlap_kernel_impl.h"
#undef T
#undef NAME
#undef EXP

#define T double
#define NAME(x) x##_f64
#define EXP exp
#include "overlap_kernel_impl.h"
