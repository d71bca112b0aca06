/* Arithmetic on rows of floats (one word's vector), for the window updates: dot products of a row
 * with several rows, sums of scaled rows, and the logistic sigmoid, written with GCC's vector
 * extensions so that they compile to AVX2/FMA or SSE as the including function's target says.
 * Included by window.c only: every function is inlined into the hot loops. */
#ifndef SAGETEXT_ROWS_H
#define SAGETEXT_ROWS_H

#include <stdint.h>

#define INLINE static inline __attribute__((always_inline))

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

INLINE v8 load8(const float *p) { return *(const v8u *)p; }
INLINE void store8(float *p, v8 v) { *(v8u *)p = v; }
INLINE v8 splat8(float x) { return (v8){0} + x; }
INLINE float hsum8(v8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

/* ------------------------------------------------------------------ row arithmetic */

/* out[k] = x . rows[k] for k < n, four rows at a time. */
INLINE void dots(const float *x, const float *const *rows, int n, int dim, float *out)
{
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        const float *a = rows[k], *b = rows[k + 1], *c = rows[k + 2], *d = rows[k + 3];
        v8 sa = {0}, sb = {0}, sc = {0}, sd = {0};
        int i = 0;
        for (; i + 8 <= dim; i += 8) {
            const v8 xv = load8(x + i);
            sa += xv * load8(a + i);
            sb += xv * load8(b + i);
            sc += xv * load8(c + i);
            sd += xv * load8(d + i);
        }
        float ra = hsum8(sa), rb = hsum8(sb), rc = hsum8(sc), rd = hsum8(sd);
        for (; i < dim; i++) {
            ra += x[i] * a[i];
            rb += x[i] * b[i];
            rc += x[i] * c[i];
            rd += x[i] * d[i];
        }
        out[k] = ra;
        out[k + 1] = rb;
        out[k + 2] = rc;
        out[k + 3] = rd;
    }
    for (; k < n; k++) {
        const float *a = rows[k];
        v8 sa = {0}, sb = {0};
        int i = 0;
        for (; i + 16 <= dim; i += 16) {
            sa += load8(x + i) * load8(a + i);
            sb += load8(x + i + 8) * load8(a + i + 8);
        }
        for (; i + 8 <= dim; i += 8) sa += load8(x + i) * load8(a + i);
        float r = hsum8(sa + sb);
        for (; i < dim; i++) r += x[i] * a[i];
        out[k] = r;
    }
}

/* y += sum_k g[k] rows[k], for up to 16 rows at a time (broadcasts kept in registers). */
INLINE void combine16(float *y, const float *g, const float *const *rows, int n, int dim)
{
    v8 gv[16];
    for (int k = 0; k < n; k++) gv[k] = splat8(g[k]);
    int i = 0;
    for (; i + 8 <= dim; i += 8) {
        v8 acc = load8(y + i);
        for (int k = 0; k < n; k++) acc += gv[k] * load8(rows[k] + i);
        store8(y + i, acc);
    }
    for (; i < dim; i++) {
        float acc = y[i];
        for (int k = 0; k < n; k++) acc += g[k] * rows[k][i];
        y[i] = acc;
    }
}

INLINE void combine(float *y, const float *g, const float *const *rows, int n, int dim)
{
    for (int k = 0; k < n; k += 16) combine16(y, g + k, rows + k, n - k < 16 ? n - k : 16, dim);
}

/* y += a x */
INLINE void axpy(float *y, float a, const float *x, int dim)
{
    int i = 0;
    const v8 av = splat8(a);
    for (; i + 8 <= dim; i += 8) store8(y + i, load8(y + i) + av * load8(x + i));
    for (; i < dim; i++) y[i] += a * x[i];
}

INLINE void add(float *y, const float *x, int dim)
{
    int i = 0;
    for (; i + 8 <= dim; i += 8) store8(y + i, load8(y + i) + load8(x + i));
    for (; i < dim; i++) y[i] += x[i];
}

INLINE void scale(float *y, float a, int dim)
{
    int i = 0;
    const v8 av = splat8(a);
    for (; i + 8 <= dim; i += 8) store8(y + i, load8(y + i) * av);
    for (; i < dim; i++) y[i] *= a;
}

/* ------------------------------------------------------------------ sigmoid */

INLINE v8 select8(v8i mask, v8 yes, v8 no) { return (v8)(((v8i)yes & mask) | ((v8i)no & ~mask)); }

/* exp(x) for x in [-30, 30]: 2^n exp(f), |f| <= ln(2)/2, exp(f) by its Taylor series to f^7
 * (relative error below 1e-7, float rounding aside). */
INLINE v8 exp8(v8 x)
{
    const v8 magic = splat8(12582912.0f); /* 1.5 * 2^23: adding and removing it rounds to an integer */
    const v8 r = (x * splat8(1.44269504088896341f) + magic) - magic;
    const v8 f = (x - r * splat8(0.693359375f)) - r * splat8(-2.12194440e-4f);
    v8 p = splat8(1.0f / 5040);
    p = p * f + splat8(1.0f / 720);
    p = p * f + splat8(1.0f / 120);
    p = p * f + splat8(1.0f / 24);
    p = p * f + splat8(1.0f / 6);
    p = p * f + splat8(0.5f);
    p = p * f + splat8(1.0f);
    p = p * f + splat8(1.0f);
    const v8i n = __builtin_convertvector(r, v8i);
    return p * (v8)((n + 127) << 23);
}

INLINE v8 sigmoid8(v8 x)
{
    x = select8(x < splat8(-30.0f), splat8(-30.0f), x);
    x = select8(x > splat8(30.0f), splat8(30.0f), x);
    return splat8(1.0f) / (splat8(1.0f) + exp8(-x));
}

/* scores (rows x cols, padded to a multiple of 8) -> (label - sigmoid(score)) * lr, label 1 in column 0 */
INLINE void sgns_gradients(float *scores, int rows, int cols, float lr)
{
    const int n = rows * cols;
    for (int i = 0; i < n; i += 8) store8(scores + i, sigmoid8(load8(scores + i)));
    for (int r = 0; r < rows; r++) {
        float *row = scores + r * cols;
        row[0] = (1.0f - row[0]) * lr;
        for (int c = 1; c < cols; c++) row[c] = -row[c] * lr;
    }
}

#endif
