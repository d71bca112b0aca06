/* Vose's alias method for the negative-sampling distribution (see sampling.h for the draws). */
#include "native.h"

#include <stdlib.h>

int build_alias(const double *weights, int64_t n, uint32_t *threshold, int32_t *alias)
{
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += weights[i];
    double *p = malloc(sizeof(double) * n);
    int64_t *small = malloc(sizeof(int64_t) * n), *large = malloc(sizeof(int64_t) * n);
    if (!p || !small || !large || total <= 0) {
        free(p);
        free(small);
        free(large);
        return -1;
    }
    int64_t ns = 0, nl = 0;
    for (int64_t i = 0; i < n; i++) {
        p[i] = weights[i] * (double)n / total;
        if (p[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        const int64_t s = small[--ns], l = large[--nl];
        threshold[s] = (uint32_t)(p[s] * 4294967296.0);
        alias[s] = (int32_t)l;
        p[l] = (p[l] + p[s]) - 1.0;
        if (p[l] < 1.0)
            small[ns++] = l;
        else
            large[nl++] = l;
    }
    while (nl > 0) { const int64_t l = large[--nl]; threshold[l] = UINT32_MAX; alias[l] = (int32_t)l; }
    while (ns > 0) { const int64_t s = small[--ns]; threshold[s] = UINT32_MAX; alias[s] = (int32_t)s; }
    free(p);
    free(small);
    free(large);
    return 0;
}
