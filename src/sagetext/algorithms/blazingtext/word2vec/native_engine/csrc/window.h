/* The update of one window (HogBatch), included by train.c and inlined into its hot loops.
 *
 * A window is a centre word, its context words and its targets: the centre word (label 1), then
 * the negatives (label 0), shared by every context word of the window. Skip-gram makes each
 * context word predict the targets, so a window's scores are one small dense product,
 * (contexts x dim) . (dim x targets), over rows that stay in cache; cbow makes their mean
 * predict them (with subwords the mean of all the context words' rows, as fastText and gensim's
 * FastText form it: a word weighs as many rows as it has). Gradients are computed from the rows
 * as they were when the window began, then added (every context in full, word2vec.c's
 * cbow_mean): what torch_engine/step.py computes for a minibatch of one window.
 *
 * `*_core` take the context words' input vectors and leave their gradients in the scratch
 * (skip-gram: one row per context word; cbow: one row for all), the output rows updated. Two
 * ways to feed them: `exact_window` reads each input vector from the rows (with subwords, the
 * mean of the word's rows) and adds the gradients back to them, window by window; `Bags`, for
 * subwords in training, computes a word's mean once when it enters the sliding window, adds each
 * window's gradient to that mean (as the rows' mean would move) and to a pending sum, and adds
 * the pending sum to the word's rows once when it leaves: about 2 x window_size fewer passes
 * over the rows, which fastText and gensim make window after window.
 */
#ifndef SAGETEXT_WINDOW_H
#define SAGETEXT_WINDOW_H

#include <string.h>

#include "native.h"
#include "rows.h"

/* Skip-gram: gradients for input h[j] in s->grad + j * dim. */
INLINE void skipgram_core(const Net *net, const float *const *h, int nc, const int64_t *targets, int nt, float lr,
                          Scratch *s)
{
    const int dim = net->dim;
    for (int t = 0; t < nt; t++) s->o[t] = net->out_r + targets[t] * dim;
    for (int j = 0; j < nc; j++) dots(h[j], s->o, nt, dim, s->scores + j * nt);
    sgns_gradients(s->scores, nc, nt, lr);
    for (int j = 0; j < nc; j++) {
        float *g = s->grad + j * dim;
        memset(g, 0, sizeof(float) * dim);
        combine(g, s->scores + j * nt, s->o, nt, dim);
    }
    for (int t = 0; t < nt; t++) {
        for (int j = 0; j < nc; j++) s->column[j] = s->scores[j * nt + t];
        combine(net->out_w + targets[t] * dim, s->column, h, nc, dim);
    }
}

/* cbow: the gradient of every input in s->grad. The hidden vector is the mean of the inputs
 * h[j], each weighing weights[j] (NULL: 1 each). */
INLINE void cbow_core(const Net *net, const float *const *h, const float *weights, int nc, const int64_t *targets,
                      int nt, float lr, Scratch *s)
{
    const int dim = net->dim;
    float *mean = s->hidden, *g = s->grad;
    memset(mean, 0, sizeof(float) * dim);
    float total = 0;
    for (int j = 0; j < nc; j++) {
        if (weights == NULL) {
            add(mean, h[j], dim);
        } else {
            axpy(mean, weights[j], h[j], dim);
            total += weights[j];
        }
    }
    scale(mean, 1.0f / (weights == NULL ? (float)nc : total), dim);
    for (int t = 0; t < nt; t++) s->o[t] = net->out_r + targets[t] * dim;
    dots(mean, s->o, nt, dim, s->scores);
    sgns_gradients(s->scores, 1, nt, lr);
    memset(g, 0, sizeof(float) * dim);
    combine(g, s->scores, s->o, nt, dim);
    for (int t = 0; t < nt; t++) axpy(net->out_w + targets[t] * dim, s->scores[t], mean, dim);
}

INLINE void window_core(const Net *net, int mode, const float *const *h, const float *weights, int nc,
                        const int64_t *targets, int nt, float lr, Scratch *s)
{
    if (mode == MODE_CBOW)
        cbow_core(net, h, weights, nc, targets, nt, lr, s);
    else
        skipgram_core(net, h, nc, targets, nt, lr, s);
}

/* The gradient of context word j of the last window. */
INLINE const float *input_gradient(int mode, const Scratch *s, int j, int dim)
{
    return mode == MODE_CBOW ? s->grad : s->grad + j * dim;
}

/* With subwords, cbow weighs each context word by its number of rows (s->column); else NULL. */
INLINE const float *bag_weights(const Net *net, int mode, const int64_t *words, int nc, Scratch *s)
{
    if (net->bag_offsets == NULL || mode != MODE_CBOW) return NULL;
    for (int j = 0; j < nc; j++) s->column[j] = (float)(net->bag_offsets[words[j] + 1] - net->bag_offsets[words[j]]);
    return s->column;
}

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

/* One window read from the rows and added back to them at once. */
INLINE void exact_window(const Net *net, int mode, const int64_t *context, int nc, const int64_t *targets, int nt,
                         float lr, Scratch *s)
{
    const int dim = net->dim;
    for (int j = 0; j < nc; j++) {
        if (net->bag_offsets != NULL) {
            bag_mean(net, context[j], s->bags + j * dim);
            s->h[j] = s->bags + j * dim;
        } else {
            s->h[j] = net->in_r + context[j] * dim;
        }
    }
    window_core(net, mode, s->h, bag_weights(net, mode, context, nc, s), nc, targets, nt, lr, s);
    for (int j = 0; j < nc; j++) add_to_input(net, context[j], input_gradient(mode, s, j, dim));
}

/* The vectors of the words of a sentence's sliding window (subwords): slot k % size for the
 * k-th kept word of the sentence, from `enter` until `leave`. */
typedef struct {
    int size;
    float *mean;    /* size x dim */
    float *pending; /* size x dim: gradients not yet added to the rows */
} Bags;

INLINE void bags_enter(const Net *net, Bags *b, int64_t k, int64_t word)
{
    const int dim = net->dim;
    const int64_t slot = k % b->size;
    bag_mean(net, word, b->mean + slot * dim);
    memset(b->pending + slot * dim, 0, sizeof(float) * dim);
}

INLINE void bags_leave(const Net *net, Bags *b, int64_t k, int64_t word)
{
    add_to_input(net, word, b->pending + (k % b->size) * net->dim);
}

/* One window whose context words are kept words `positions` of the sentence (`words`, that
 * many), all in the bags. */
INLINE void bags_window(const Net *net, int mode, Bags *b, const int64_t *positions, const int64_t *words, int nc,
                        const int64_t *targets, int nt, float lr, Scratch *s)
{
    const int dim = net->dim;
    for (int j = 0; j < nc; j++) s->h[j] = b->mean + (positions[j] % b->size) * dim;
    window_core(net, mode, s->h, bag_weights(net, mode, words, nc, s), nc, targets, nt, lr, s);
    for (int j = 0; j < nc; j++) {
        const int64_t slot = positions[j] % b->size;
        const float *g = input_gradient(mode, s, j, dim);
        add(b->mean + slot * dim, g, dim);
        add(b->pending + slot * dim, g, dim);
    }
}

#endif
