/* Hogwild threads that train blocks of a corpus, window after window (window.h).
 *
 * Threads share the parameters without locks (as word2vec.c and fastText do) and take blocks of
 * whole sentences in turn. In a block, as in word2vec.c: each sentence is subsampled, each kept
 * word is a centre whose window shrinks to a random 1..window words each side, and the rate
 * decays linearly with the position in the epoch. A set of negatives serves one window, or
 * batch_skipgram's windows_per_negative_set (P) windows: then P sets are in use at once and
 * window c takes set c mod P, so the windows that share a set stand P words apart rather than
 * side by side (neighbouring windows share most of their context words, and pushing the same
 * negatives away from the same words P times over cost 10 analogy points at P = 11 on text8).
 * Sets are drawn a few ahead and their rows fetched into cache meanwhile, as are the rows of the
 * words about to enter the window.
 *
 * The hot functions are INLINE bodies compiled twice on x86-64, for AVX2+FMA and for the
 * baseline, and `fast()` picks one (GCC's target_clones would pick by CPU model, not features).
 */
#include "native.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sampling.h"
#include "window.h"

#if defined(__x86_64__) && !defined(SAGETEXT_BASELINE_ONLY)
#define FAST_TARGET __attribute__((target("avx2,fma")))
static int fast(void)
{
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return known;
}
#define TWO_VERSIONS(ret, name, params, args) \
    FAST_TARGET static ret name##_fast params { return name##_body args; } \
    static ret name##_base params { return name##_body args; } \
    static ret name params { return fast() ? name##_fast args : name##_base args; }
#else
#define TWO_VERSIONS(ret, name, params, args) \
    static ret name params { return name##_body args; }
#endif

enum { SETS_AHEAD = 3, ROWS_AHEAD = 3 }; /* how far ahead negatives are drawn and rows fetched */

int scratch_init(Scratch *s, int max_context, int max_targets, int dim)
{
    memset(s, 0, sizeof(*s));
    s->max_context = max_context < 1 ? 1 : max_context;
    s->max_targets = max_targets;
    const size_t rows = (size_t)s->max_context * dim, scores = ((size_t)s->max_context * max_targets + 7) / 8 * 8;
    s->hidden = calloc(dim, sizeof(float));
    s->bags = calloc(rows, sizeof(float));
    s->grad = calloc(rows, sizeof(float));
    s->scores = calloc(scores, sizeof(float));
    s->column = calloc(s->max_context, sizeof(float));
    s->h = calloc(s->max_context, sizeof(float *));
    s->o = calloc(max_targets, sizeof(float *));
    if (!s->hidden || !s->bags || !s->grad || !s->scores || !s->column || !s->h || !s->o) {
        scratch_free(s);
        return -1;
    }
    return 0;
}

void scratch_free(Scratch *s)
{
    free(s->hidden);
    free(s->bags);
    free(s->grad);
    free(s->scores);
    free(s->column);
    free((void *)s->h);
    free((void *)s->o);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------ prefetching */

INLINE void prefetch_row(const float *matrix, int64_t row, int dim)
{
    const char *p = (const char *)(matrix + row * dim);
    for (int off = 0; off < dim * (int)sizeof(float); off += 64) __builtin_prefetch(p + off);
}

/* The input rows of a word about to enter the window (with subwords, every row of its bag). */
INLINE void prefetch_input(const Net *net, int64_t word)
{
    if (net->bag_offsets == NULL) {
        prefetch_row(net->in_r, word, net->dim);
        return;
    }
    for (int64_t r = net->bag_offsets[word]; r < net->bag_offsets[word + 1]; r++)
        prefetch_row(net->in_r, net->bag_rows[r], net->dim);
}

INLINE void draw_set(const Job *job, Rng *rng, int64_t *set)
{
    for (int k = 0; k < job->negatives; k++) {
        set[k] = draw_word(rng, job->alias_threshold, job->alias_index, job->n_words);
        prefetch_row(job->net.out_r, set[k], job->net.dim);
    }
}

/* ------------------------------------------------------------------ one thread */

typedef struct {
    Scratch scratch;
    Bags bags;          /* subwords: the vectors of the sliding window's words */
    int64_t *kept;      /* the words of a sentence that subsampling kept */
    int64_t *position;  /* their positions in the shard */
    int64_t *context;   /* a window's context words (or, with subwords, their places in kept) */
    int64_t *words;     /* subwords: a window's context words */
    int64_t *targets;
    int64_t *negatives; /* the sets in use: windows_per_negative_set of them */
    int64_t *ahead;     /* the next SETS_AHEAD sets */
    int ring;
} Worker;

static void worker_free(Worker *w)
{
    scratch_free(&w->scratch);
    free(w->bags.mean);
    free(w->bags.pending);
    free(w->kept);
    free(w->position);
    free(w->context);
    free(w->words);
    free(w->targets);
    free(w->negatives);
    free(w->ahead);
}

static int worker_init(Worker *w, const Job *job)
{
    memset(w, 0, sizeof(*w));
    const int width = 2 * job->window, dim = job->net.dim;
    w->bags.size = width + 2;
    w->bags.mean = malloc(sizeof(float) * w->bags.size * dim);
    w->bags.pending = malloc(sizeof(float) * w->bags.size * dim);
    w->kept = malloc(sizeof(int64_t) * (job->max_sentence + 1));
    w->position = malloc(sizeof(int64_t) * (job->max_sentence + 1));
    w->context = malloc(sizeof(int64_t) * width);
    w->words = malloc(sizeof(int64_t) * width);
    w->targets = malloc(sizeof(int64_t) * (job->negatives + 1));
    w->negatives = malloc(sizeof(int64_t) * job->windows_per_negative_set * (job->negatives + 1));
    w->ahead = malloc(sizeof(int64_t) * SETS_AHEAD * (job->negatives + 1));
    if (!w->bags.mean || !w->bags.pending || !w->kept || !w->position || !w->context || !w->words || !w->targets ||
        !w->negatives || !w->ahead || scratch_init(&w->scratch, width, job->negatives + 1, dim) != 0) {
        worker_free(w);
        return -1;
    }
    return 0;
}

/* The words of a sentence kept by subsampling (and their positions), counted. */
INLINE int64_t subsample(const Job *job, Rng *rng, int64_t start, int64_t end, Worker *w)
{
    int64_t n = 0;
    for (int64_t p = start; p < end; p++) {
        const int32_t word = job->ids[p];
        const uint32_t keep = job->keep[word];
        if (keep == UINT32_MAX || next32(rng) < keep) {
            w->kept[n] = word;
            w->position[n++] = p;
        }
    }
    return n;
}

INLINE float rate_at(const Job *job, int64_t position)
{
    const double span = job->rate_epochs - job->rate_origin;
    const double done = job->epoch + (double)position / (double)job->shard_tokens;
    double lr = span > 0 ? job->rate_start + (job->rate_end - job->rate_start) * (done - job->rate_origin) / span
                         : job->rate_end;
    return (float)(lr < job->rate_floor ? job->rate_floor : lr);
}

INLINE void train_block_body(Job *job, int64_t block, Worker *w)
{
    Rng rng = block_rng(job->seed, block);
    const Net *net = &job->net;
    const int window = job->window, negatives = job->negatives, per_set = job->windows_per_negative_set;
    const int subwords = net->bag_offsets != NULL;
    const int64_t set_size = negatives + 1;
    for (int k = 0; k < SETS_AHEAD; k++) draw_set(job, &rng, w->ahead + k * set_size);
    w->ring = 0;
    int64_t window_count = 0; /* windows of this block so far */
    for (int64_t sentence = job->block_sentences[block]; sentence < job->block_sentences[block + 1]; sentence++) {
        const int64_t start = job->sentence_starts[sentence], end = job->sentence_starts[sentence + 1];
        const int64_t n = subsample(job, &rng, start, end, w);
        int64_t entered = -1, left = 0; /* subwords: words [left, entered] are in the bags */
        for (int64_t i = 0; i < n; i++) {
            const int64_t slot = window_count % per_set;
            int64_t *current = w->negatives + slot * set_size;
            if ((window_count / per_set) % per_set == 0) { /* the set in this slot has served its windows */
                int64_t *set = w->ahead + w->ring * set_size; /* take the oldest set drawn ahead, draw one more */
                memcpy(current, set, sizeof(int64_t) * negatives);
                draw_set(job, &rng, set);
                w->ring = (w->ring + 1) % SETS_AHEAD;
            }
            window_count++;
            if (i + ROWS_AHEAD < n) prefetch_row(net->out_r, w->kept[i + ROWS_AHEAD], net->dim);
            if (i + ROWS_AHEAD + window < n) prefetch_input(net, w->kept[i + ROWS_AHEAD + window]);
            const int64_t b = 1 + (int64_t)below(&rng, (uint32_t)window);
            const int64_t lo = i - b < 0 ? 0 : i - b, hi = i + b >= n ? n - 1 : i + b;
            int nc = 0;
            for (int64_t k = lo; k <= hi; k++)
                if (k != i) {
                    w->context[nc] = subwords ? k : w->kept[k];
                    w->words[nc++] = w->kept[k];
                }
            if (nc == 0) continue;
            const int64_t centre = w->kept[i];
            int nt = 1;
            w->targets[0] = centre;
            for (int k = 0; k < negatives; k++)
                if (current[k] != centre) w->targets[nt++] = current[k];
            const float lr = rate_at(job, w->position[i]);
            if (!subwords) {
                exact_window(net, job->mode, w->context, nc, w->targets, nt, lr, &w->scratch);
                continue;
            }
            for (; left < i - window; left++) /* words that this and later windows cannot reach */
                if (left <= entered) bags_leave(net, &w->bags, left, w->kept[left]);
            if (entered < left - 1) entered = left - 1;
            for (; entered < hi; entered++) bags_enter(net, &w->bags, entered + 1, w->kept[entered + 1]);
            bags_window(net, job->mode, &w->bags, w->context, w->words, nc, w->targets, nt, lr, &w->scratch);
        }
        if (subwords)
            for (; left <= entered; left++) bags_leave(net, &w->bags, left, w->kept[left]);
        atomic_fetch_add_explicit(job->progress, end - start, memory_order_relaxed);
    }
}

TWO_VERSIONS(void, train_block, (Job *job, int64_t block, Worker *w), (job, block, w))

static void *work(void *arg)
{
    Job *job = arg;
    Worker w;
    if (worker_init(&w, job) != 0) {
        atomic_store(&job->failed, 1);
        return NULL;
    }
    for (;;) {
        const int64_t block = atomic_fetch_add(&job->next_block, 1);
        if (block >= job->last_block) break;
        train_block(job, block, &w);
    }
    worker_free(&w);
    return NULL;
}

int run_job(Job *job, int threads)
{
    atomic_store(&job->next_block, job->first_block);
    atomic_store(&job->failed, 0);
    if (threads < 1) threads = 1;
    pthread_t *ids = calloc(threads, sizeof(pthread_t));
    int started = 0;
    if (ids != NULL)
        while (started < threads - 1 && pthread_create(&ids[started], NULL, work, job) == 0) started++;
    work(job); /* this thread is one of them */
    for (int i = 0; i < started; i++) pthread_join(ids[i], NULL);
    free(ids);
    return atomic_load(&job->failed) ? -1 : 0;
}

/* ------------------------------------------------------------------ replaying given windows (tests) */

INLINE void replay_body(const Net *net, int mode, int64_t n_windows, int width, int n_targets,
                        const int64_t *context, const float *context_mask, const int64_t *targets,
                        const float *target_mask, const float *lr, Scratch *s, int64_t *ctx, int64_t *tgt)
{
    for (int64_t p = 0; p < n_windows; p++) {
        int nc = 0, nt = 0;
        for (int j = 0; j < width; j++)
            if (context_mask[p * width + j] != 0) ctx[nc++] = context[p * width + j];
        for (int t = 0; t < n_targets; t++)
            if (target_mask[p * n_targets + t] != 0) tgt[nt++] = targets[p * n_targets + t];
        if (nc > 0 && nt > 0) exact_window(net, mode, ctx, nc, tgt, nt, lr[p], s);
    }
}

TWO_VERSIONS(void, replay,
             (const Net *net, int mode, int64_t n_windows, int width, int n_targets, const int64_t *context,
              const float *context_mask, const int64_t *targets, const float *target_mask, const float *lr,
              Scratch *s, int64_t *ctx, int64_t *tgt),
             (net, mode, n_windows, width, n_targets, context, context_mask, targets, target_mask, lr, s, ctx, tgt))

int replay_windows(const Net *net, int mode, int64_t n_windows, int width, int n_targets, const int64_t *context,
                   const float *context_mask, const int64_t *targets, const float *target_mask, const float *lr)
{
    Scratch s;
    int64_t *ctx = malloc(sizeof(int64_t) * (width + 1)), *tgt = malloc(sizeof(int64_t) * (n_targets + 1));
    if (!ctx || !tgt || scratch_init(&s, width, n_targets, net->dim) != 0) {
        free(ctx);
        free(tgt);
        return -1;
    }
    replay(net, mode, n_windows, width, n_targets, context, context_mask, targets, target_mask, lr, &s, ctx, tgt);
    scratch_free(&s);
    free(ctx);
    free(tgt);
    return 0;
}
