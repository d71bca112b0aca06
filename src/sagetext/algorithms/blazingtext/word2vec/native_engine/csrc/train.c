/* The HogBatch update of one window and the Hogwild threads that train blocks of a corpus.
 *
 * A window is a centre word, its context words (within a randomly shrunk window, inside its
 * sentence) and targets: the centre word (label 1), then `negatives` words drawn from the
 * unigram^0.75 distribution (label 0), shared by every context word of the window (and, in
 * batch_skipgram, by `windows_per_negative_set` consecutive windows). Skip-gram makes each
 * context word predict the targets, so the scores of a window are one small dense product,
 * (contexts x dim) . (dim x targets), over rows that stay in cache; cbow makes their mean
 * predict them. Gradients are computed from the rows as they were when the window began and
 * then added (every context row in full, word2vec.c's cbow_mean), which is what
 * torch_engine/step.py computes for a minibatch of one window.
 *
 * Threads share the parameters without locks (Hogwild, as word2vec.c and fastText do) and take
 * blocks of whole sentences in turn. Vector code uses GCC's vector extensions; on x86-64 the
 * hot functions are compiled twice (AVX2+FMA and the baseline) and picked when loaded.
 */
#include "native.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

/* The hot functions are INLINE bodies, compiled into a baseline function and, on x86-64, an
 * AVX2+FMA one; `fast()` tells which to call (GCC's target_clones would pick by CPU model). */
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

/* ------------------------------------------------------------------ one window */

/* A word's input vector with subwords: the mean of its rows. */
INLINE void bag_mean(const Net *net, int64_t word, float *dst)
{
    const int dim = net->dim;
    const int64_t first = net->bag_offsets[word], last = net->bag_offsets[word + 1];
    memcpy(dst, net->in_r + net->bag_rows[first] * dim, sizeof(float) * dim);
    for (int64_t r = first + 1; r < last; r++) add(dst, net->in_r + net->bag_rows[r] * dim, dim);
    if (last - first > 1) scale(dst, 1.0f / (float)(last - first), dim);
}

/* Add a gradient to a word's input row, or with subwords to every row of its bag. */
INLINE void add_to_input(const Net *net, int64_t word, const float *grad)
{
    const int dim = net->dim;
    if (net->bag_offsets == NULL) {
        add(net->in_w + word * dim, grad, dim);
        return;
    }
    for (int64_t r = net->bag_offsets[word]; r < net->bag_offsets[word + 1]; r++)
        add(net->in_w + net->bag_rows[r] * dim, grad, dim);
}

INLINE void skipgram_window(const Net *net, const int64_t *context, int nc, const int64_t *targets, int nt, float lr,
                            Scratch *s)
{
    const int dim = net->dim;
    for (int j = 0; j < nc; j++) {
        if (net->bag_offsets != NULL) {
            bag_mean(net, context[j], s->hidden + j * dim);
            s->h[j] = s->hidden + j * dim;
        } else {
            s->h[j] = net->in_r + context[j] * dim;
        }
    }
    for (int t = 0; t < nt; t++) s->o[t] = net->out_r + targets[t] * dim;
    for (int j = 0; j < nc; j++) dots(s->h[j], s->o, nt, dim, s->scores + j * nt);
    sgns_gradients(s->scores, nc, nt, lr);
    for (int j = 0; j < nc; j++) {
        float *g = s->grad + j * dim;
        memset(g, 0, sizeof(float) * dim);
        combine(g, s->scores + j * nt, s->o, nt, dim);
    }
    for (int t = 0; t < nt; t++) {
        for (int j = 0; j < nc; j++) s->column[j] = s->scores[j * nt + t];
        combine(net->out_w + targets[t] * dim, s->column, s->h, nc, dim);
    }
    for (int j = 0; j < nc; j++) add_to_input(net, context[j], s->grad + j * dim);
}

INLINE void cbow_window(const Net *net, const int64_t *context, int nc, const int64_t *targets, int nt, float lr,
                        Scratch *s)
{
    const int dim = net->dim;
    float *h = s->hidden, *g = s->grad;
    memset(h, 0, sizeof(float) * dim);
    for (int j = 0; j < nc; j++) {
        if (net->bag_offsets != NULL) {
            bag_mean(net, context[j], g);
            add(h, g, dim);
        } else {
            add(h, net->in_r + context[j] * dim, dim);
        }
    }
    scale(h, 1.0f / (float)nc, dim);
    for (int t = 0; t < nt; t++) s->o[t] = net->out_r + targets[t] * dim;
    dots(h, s->o, nt, dim, s->scores);
    sgns_gradients(s->scores, 1, nt, lr);
    memset(g, 0, sizeof(float) * dim);
    combine(g, s->scores, s->o, nt, dim);
    for (int t = 0; t < nt; t++) axpy(net->out_w + targets[t] * dim, s->scores[t], h, dim);
    for (int j = 0; j < nc; j++) add_to_input(net, context[j], g);
}

INLINE void window_impl(const Net *net, int mode, const int64_t *context, int nc, const int64_t *targets, int nt,
                        float lr, Scratch *s)
{
    if (mode == MODE_CBOW)
        cbow_window(net, context, nc, targets, nt, lr, s);
    else
        skipgram_window(net, context, nc, targets, nt, lr, s);
}

int scratch_init(Scratch *s, int max_context, int max_targets, int dim)
{
    memset(s, 0, sizeof(*s));
    s->max_context = max_context < 1 ? 1 : max_context;
    s->max_targets = max_targets;
    const size_t rows = (size_t)s->max_context * dim, scores = ((size_t)s->max_context * max_targets + 7) / 8 * 8;
    s->hidden = calloc(rows + dim, sizeof(float));
    s->grad = calloc(rows + dim, sizeof(float));
    s->scores = calloc(scores, sizeof(float));
    s->column = calloc(s->max_context, sizeof(float));
    s->h = calloc(s->max_context, sizeof(float *));
    s->o = calloc(max_targets, sizeof(float *));
    if (!s->hidden || !s->grad || !s->scores || !s->column || !s->h || !s->o) {
        scratch_free(s);
        return -1;
    }
    return 0;
}

void scratch_free(Scratch *s)
{
    free(s->hidden);
    free(s->grad);
    free(s->scores);
    free(s->column);
    free((void *)s->h);
    free((void *)s->o);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------ random draws */

typedef struct {
    uint64_t state;
} Rng;

INLINE uint64_t next64(Rng *r) /* splitmix64 */
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

INLINE uint32_t next32(Rng *r) { return (uint32_t)(next64(r) >> 32); }

INLINE uint32_t below(Rng *r, uint32_t n) { return (uint32_t)(((uint64_t)next32(r) * n) >> 32); }

static uint64_t block_seed(uint64_t seed, int64_t block)
{
    Rng a = {(uint64_t)block};
    Rng b = {seed ^ next64(&a)};
    return next64(&b);
}

INLINE int64_t draw_negative(const Job *job, Rng *r)
{
    const uint64_t x = next64(r);
    const uint32_t i = (uint32_t)(((x >> 32) * (uint64_t)job->n_words) >> 32);
    return (uint32_t)x < job->alias_threshold[i] ? (int64_t)i : (int64_t)job->alias_index[i];
}

INLINE void prefetch_row(const float *matrix, int64_t row, int dim)
{
    const char *p = (const char *)(matrix + row * dim);
    for (int off = 0; off < dim * (int)sizeof(float); off += 64) __builtin_prefetch(p + off);
}

/* A set of negatives, their output rows fetched into cache while the windows before it train. */
INLINE void draw_set(const Job *job, Rng *rng, int64_t *set)
{
    for (int k = 0; k < job->negatives; k++) {
        set[k] = draw_negative(job, rng);
        prefetch_row(job->net.out_r, set[k], job->net.dim);
    }
}

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

/* ------------------------------------------------------------------ blocks and threads */

enum { SETS_AHEAD = 3, ROWS_AHEAD = 3 }; /* windows ahead that negatives and rows are fetched */

typedef struct {
    Scratch scratch;
    int64_t *kept;      /* ids of the tokens of a sentence kept by subsampling */
    int64_t *position;  /* their positions in the shard */
    int64_t *context, *targets;
    int64_t *negatives; /* the set of the current window */
    int64_t *ahead;     /* the next SETS_AHEAD sets, drawn early so that their rows reach the cache in time */
    int ring;
} Worker;

static void worker_free(Worker *w)
{
    scratch_free(&w->scratch);
    free(w->kept);
    free(w->position);
    free(w->context);
    free(w->targets);
    free(w->negatives);
    free(w->ahead);
}

static int worker_init(Worker *w, const Job *job)
{
    memset(w, 0, sizeof(*w));
    const int width = 2 * job->window;
    w->kept = malloc(sizeof(int64_t) * (job->max_sentence + 1));
    w->position = malloc(sizeof(int64_t) * (job->max_sentence + 1));
    w->context = malloc(sizeof(int64_t) * width);
    w->targets = malloc(sizeof(int64_t) * (job->negatives + 1));
    w->negatives = malloc(sizeof(int64_t) * (job->negatives + 1));
    w->ahead = malloc(sizeof(int64_t) * SETS_AHEAD * (job->negatives + 1));
    if (!w->kept || !w->position || !w->context || !w->targets || !w->negatives || !w->ahead ||
        scratch_init(&w->scratch, width, job->negatives + 1, job->net.dim) != 0) {
        worker_free(w);
        return -1;
    }
    return 0;
}

INLINE void train_block_body(Job *job, int64_t block, Worker *w)
{
    Rng rng = {block_seed(job->seed, block)};
    const int window = job->window, negatives = job->negatives, per_set = job->windows_per_negative_set;
    const double span = job->rate_epochs - job->rate_origin;
    int in_set = 0;
    const int64_t set_size = job->negatives + 1;
    for (int k = 0; k < SETS_AHEAD; k++) draw_set(job, &rng, w->ahead + k * set_size);
    w->ring = 0;
    for (int64_t sentence = job->block_sentences[block]; sentence < job->block_sentences[block + 1]; sentence++) {
        const int64_t start = job->sentence_starts[sentence], end = job->sentence_starts[sentence + 1];
        int64_t n = 0;
        for (int64_t p = start; p < end; p++) {
            const int32_t word = job->ids[p];
            const uint32_t keep = job->keep[word];
            if (keep == UINT32_MAX || next32(&rng) < keep) {
                w->kept[n] = word;
                w->position[n++] = p;
            }
        }
        for (int64_t i = 0; i < n; i++) {
            if (in_set == 0) { /* this window starts a set: take the oldest set drawn ahead, draw one more */
                int64_t *set = w->ahead + w->ring * set_size;
                memcpy(w->negatives, set, sizeof(int64_t) * negatives);
                draw_set(job, &rng, set);
                w->ring = (w->ring + 1) % SETS_AHEAD;
            }
            if (++in_set == per_set) in_set = 0;
            if (i + ROWS_AHEAD < n) prefetch_row(job->net.out_r, w->kept[i + ROWS_AHEAD], job->net.dim);
            if (i + ROWS_AHEAD + window < n && job->net.bag_offsets == NULL)
                prefetch_row(job->net.in_r, w->kept[i + ROWS_AHEAD + window], job->net.dim);
            const int64_t b = 1 + (int64_t)below(&rng, (uint32_t)window);
            const int64_t lo = i - b < 0 ? 0 : i - b, hi = i + b >= n ? n - 1 : i + b;
            int nc = 0;
            for (int64_t k = lo; k <= hi; k++)
                if (k != i) w->context[nc++] = w->kept[k];
            if (nc == 0) continue;
            const int64_t centre = w->kept[i];
            int nt = 1;
            w->targets[0] = centre;
            for (int k = 0; k < negatives; k++)
                if (w->negatives[k] != centre) w->targets[nt++] = w->negatives[k];
            const double done = job->epoch + (double)w->position[i] / (double)job->shard_tokens;
            double lr = span > 0 ? job->rate_start + (job->rate_end - job->rate_start) * (done - job->rate_origin) / span
                                 : job->rate_end;
            if (lr < job->rate_floor) lr = job->rate_floor;
            window_impl(&job->net, job->mode, w->context, nc, w->targets, nt, (float)lr, &w->scratch);
        }
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
        if (nc > 0 && nt > 0) window_impl(net, mode, ctx, nc, tgt, nt, lr[p], s);
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
