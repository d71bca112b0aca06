/* The native word2vec engine: declarations shared by module.c (Python bindings),
 * train.c (the HogBatch update and the Hogwild training threads) and tokenizer.c. */
#ifndef SAGETEXT_NATIVE_H
#define SAGETEXT_NATIVE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum { MODE_CBOW = 0, MODE_SKIPGRAM = 1 };

/* The parameters: input rows (words, then subword buckets) and output rows, each `dim` floats.
 * Windows read `in_r`/`out_r` and add their updates to `in_w`/`out_w`: the same buffers in
 * training (Hogwild), separate ones when a test replays the reference step. With subwords a
 * word's input vector is the mean of rows bag_rows[bag_offsets[w] .. bag_offsets[w + 1]). */
typedef struct {
    const float *in_r;
    const float *out_r;
    float *in_w;
    float *out_w;
    int dim;
    const int64_t *bag_offsets; /* NULL without subwords */
    const int64_t *bag_rows;
} Net;

/* Per-thread working memory for one window (sizes from the window and negatives). */
typedef struct {
    int max_context, max_targets;
    float *hidden;  /* dim: the cbow mean */
    float *bags;    /* max_context x dim: bag means (subwords, exact windows) */
    float *grad;    /* max_context x dim: input gradients */
    float *scores;  /* max_context x max_targets, rounded up to 8 */
    float *column;  /* max_context */
    const float **h;
    const float **o;
} Scratch;

int scratch_init(Scratch *s, int max_context, int max_targets, int dim);
void scratch_free(Scratch *s);

/* Given windows, one after the other, each read from net->in_r/out_r (tests): (n_windows x
 * width) context words and (n_windows x n_targets) targets, centre word first, with their
 * masks (0: absent), and a rate per window. 0, or -1 when memory ran out. */
int replay_windows(const Net *net, int mode, int64_t n_windows, int width, int n_targets, const int64_t *context,
                   const float *context_mask, const int64_t *targets, const float *target_mask, const float *lr);

/* One job of training: blocks [first_block, last_block) of a worker's shard, by `threads`
 * threads that take blocks in turn. Every block draws from its own generator, seeded from
 * (seed, block), so a block's windows do not depend on which thread trains it. */
typedef struct {
    int mode;
    Net net;
    const int32_t *ids;             /* the shard's word ids */
    const int64_t *sentence_starts; /* n_sentences + 1 offsets into ids */
    const int64_t *block_sentences; /* n_blocks + 1: first sentence of each block */
    const uint32_t *keep;           /* per word: keep a token when a uniform u32 draw is below; UINT32_MAX: always */
    const uint32_t *alias_threshold;/* unigram^0.75 alias table */
    const int32_t *alias_index;
    int64_t n_words;
    int window, negatives, windows_per_negative_set;
    double rate_start, rate_end, rate_origin, rate_epochs, rate_floor;
    double epoch;          /* epochs before this one */
    int64_t shard_tokens;  /* tokens in the shard: a token's share of the epoch */
    int64_t max_sentence;
    uint64_t seed;
    int64_t first_block, last_block;
    _Atomic int64_t next_block;
    _Atomic int64_t *progress; /* tokens trained, added after each sentence */
    _Atomic int failed;
} Job;

int run_job(Job *job, int threads); /* 0, or -1 when memory ran out */

/* Vose's alias method: `weights` (n) -> thresholds (u32) and aliases. */
int build_alias(const double *weights, int64_t n, uint32_t *threshold, int32_t *alias);

/* The rows of `word`'s character n-grams (first_row + bucket), written to `rows` unless NULL;
 * returns how many. `wrapped` holds length + 2 bytes. See subwords.c. */
int64_t word_ngrams(const char *word, size_t length, int minn, int maxn, int64_t buckets, int64_t first_row,
                    int64_t *rows, unsigned char *wrapped);

/* vectors.txt: rows [first, last) of a (rows x dim) matrix as text, "%.9g" numbers separated by
 * spaces, a newline after each row, into a malloc'd `text` (pthread entry point; `failed` set
 * when memory ran out). format_init() first, once. */
typedef struct {
    const float *rows;
    int dim;
    int64_t first, last;
    char *text;
    size_t len, cap;
    int failed;
} TextPart;

void format_init(void);
void *format_part(void *arg);

#endif
