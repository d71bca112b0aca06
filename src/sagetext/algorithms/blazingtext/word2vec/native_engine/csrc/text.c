/* vectors.txt's numbers: each float as printf's "%.9g" writes it, by several threads. */
#include "native.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* `x` as printf's "%.9g" writes it (9 significant digits, trailing zeros dropped), without
 * printf's arbitrary-precision arithmetic: the digits come from x * 10^k in double precision,
 * which is correctly rounded except within about 1e-16 of a rounding tie, and even then
 * within one unit of the 9th digit, far inside the half ulp of a float that makes the text
 * read back to the same float. Returns the length written (at most 15 characters). */
static double powers[128]; /* 10^(i - 64) */

void format_init(void)
{
    for (int i = 0; i < 128; i++) powers[i] = pow(10.0, i - 64);
}

static int format_g9(float value, char *out)
{
    char *p = out;
    double x = (double)value;
    if (isnan(x)) return (int)(stpcpy(out, "nan") - out);
    if (signbit(x)) *p++ = '-';
    x = fabs(x);
    if (isinf(x)) return (int)(stpcpy(p, "inf") - out);
    if (x == 0.0) return (int)(stpcpy(p, "0") - out);
    int binary_exponent;
    frexp(x, &binary_exponent); /* x in [2^(b-1), 2^b): its decimal exponent, give or take one */
    int exponent = (int)floor((binary_exponent - 1) * 0.30102999566398120);
    double digits = nearbyint(x * powers[64 + 8 - exponent]);
    if (digits >= 1e9) {
        exponent++;
        digits = nearbyint(x * powers[64 + 8 - exponent]);
    } else if (digits < 1e8) {
        exponent--;
        digits = nearbyint(x * powers[64 + 8 - exponent]);
    }
    char d[10];
    long long n = (long long)digits;
    for (int i = 8; i >= 0; i--, n /= 10) d[i] = (char)('0' + n % 10);
    int last = 8; /* the last digit kept: trailing zeros go */
    while (last > 0 && d[last] == '0') last--;
    if (exponent < -4 || exponent >= 9) {
        *p++ = d[0];
        if (last > 0) {
            *p++ = '.';
            for (int i = 1; i <= last; i++) *p++ = d[i];
        }
        p += sprintf(p, "e%c%02d", exponent < 0 ? '-' : '+', exponent < 0 ? -exponent : exponent);
    } else if (exponent >= 0) {
        for (int i = 0; i <= exponent; i++) *p++ = d[i];
        if (last > exponent) {
            *p++ = '.';
            for (int i = exponent + 1; i <= last; i++) *p++ = d[i];
        }
    } else {
        *p++ = '0';
        *p++ = '.';
        for (int i = 0; i < -exponent - 1; i++) *p++ = '0';
        for (int i = 0; i <= last; i++) *p++ = d[i];
    }
    return (int)(p - out);
}

void *format_part(void *arg)
{
    TextPart *part = arg;
    const size_t need = (size_t)(part->last - part->first) * (size_t)part->dim * 17 + 1;
    part->text = malloc(need);
    if (part->text == NULL) {
        part->failed = 1;
        return NULL;
    }
    part->cap = need;
    for (int64_t r = part->first; r < part->last; r++) {
        const float *row = part->rows + (size_t)r * part->dim;
        for (int d = 0; d < part->dim; d++) {
            /* at most 15 characters ("-1.23456789e-38"), then a space or newline */
            part->len += (size_t)format_g9(row[d], part->text + part->len);
            part->text[part->len++] = d + 1 < part->dim ? ' ' : '\n';
        }
    }
    return NULL;
}

