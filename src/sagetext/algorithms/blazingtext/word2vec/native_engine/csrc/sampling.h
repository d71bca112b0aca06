/* Random draws of the training threads: a splitmix64 generator per block of sentences, uniform
 * integers, and negatives from the unigram^0.75 distribution through an alias table (two
 * lookups a draw, where word2vec.c keeps a 1e8-entry table and gensim searches a cumulative one). */
#ifndef SAGETEXT_SAMPLING_H
#define SAGETEXT_SAMPLING_H

#include <stdint.h>

#define INLINE static inline __attribute__((always_inline))

typedef struct {
    uint64_t state;
} Rng;

INLINE uint64_t next64(Rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

INLINE uint32_t next32(Rng *r) { return (uint32_t)(next64(r) >> 32); }

/* uniform in [0, n) */
INLINE uint32_t below(Rng *r, uint32_t n) { return (uint32_t)(((uint64_t)next32(r) * n) >> 32); }

/* A generator for one block: its draws depend on (seed, block) alone. */
INLINE Rng block_rng(uint64_t seed, int64_t block)
{
    Rng a = {(uint64_t)block};
    Rng b = {seed ^ next64(&a)};
    return (Rng){next64(&b)};
}

/* A word from the alias table: a uniform slot, kept when a 32-bit draw is below its threshold,
 * else its alias. */
INLINE int64_t draw_word(Rng *r, const uint32_t *threshold, const int32_t *alias, int64_t n_words)
{
    const uint64_t x = next64(r);
    const uint32_t i = (uint32_t)(((x >> 32) * (uint64_t)n_words) >> 32);
    return (uint32_t)x < threshold[i] ? (int64_t)i : (int64_t)alias[i];
}

#endif
