/* fastText's supervised SGD, one line at a time (module `_sgd`; Python side: ../compiled.py).
 *
 *   train(input, output, rows, local_inputs, line_offsets, labels, label_offsets,
 *         lr_start, lr_end, loss, seed)
 *   top_labels(input, output, inputs, offsets, out)    the best-scoring label of each line
 *   uniform_(matrix, low, high, seed)                  fill with uniform numbers (the initial weights)
 *
 * For each line of a planned batch (batches.py: the line's inputs are rows[local_inputs[j]]):
 * the hidden vector is the mean of the line's input rows; the output layer (loss 0: softmax
 * against one label, drawn at random when the line has several, as fastText does; loss 1:
 * one-vs-all, a sigmoid per label with every label of the line a positive) gives
 * alpha = lr * (label - p) per output row; the hidden gradient sum(alpha * output row) is taken
 * row by row before that row moves, as fastText's loss.cc does; then every input row of the line
 * gets the gradient divided by the number of inputs. The rate falls linearly from lr_start to
 * lr_end over the batch's inputs (the caller's share of fastText's per-token decay).
 *
 * Arrays come through the buffer protocol (numpy arrays) and are checked for type, length and
 * index ranges before the GIL is released, so Python threads calling `train` on the same
 * weights update them without locks, as fastText's Hogwild threads do.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "buffers.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { LOSS_SOFTMAX = 0, LOSS_OVA = 1 };

/* splitmix64: the draw of a label among a line's several labels. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline float dot(const float *a, const float *b, Py_ssize_t n)
{
    float s = 0.0f;
    for (Py_ssize_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void add_scaled(float *to, const float *x, float scale, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) to[i] += scale * x[i];
}

static inline float sigmoid(float x)
{
    if (x < -8.0f) return 0.0f;
    if (x > 8.0f) return 1.0f;
    return 1.0f / (1.0f + expf(-x));
}

typedef struct {
    float *input, *output;
    Py_ssize_t dim, nlabels;
    const int64_t *labels, *label_offsets;
    const int32_t *rows, *local, *line_offsets;
    Py_ssize_t num_lines, num_inputs;
    double lr_start, lr_end;
    int loss;
    uint64_t seed;
} Job;

/* The output layer for one line: updates `output`, accumulates the hidden gradient in `grad`. */
static void output_step(const Job *job, const float *hidden, float *grad, float *scores, const int64_t *labels,
                        Py_ssize_t nline_labels, float lr, uint64_t *rng)
{
    Py_ssize_t dim = job->dim, n = job->nlabels;
    if (job->loss == LOSS_SOFTMAX) {
        int64_t target = labels[nline_labels > 1 ? (Py_ssize_t)(next_random(rng) % (uint64_t)nline_labels) : 0];
        float max = -INFINITY, sum = 0.0f;
        for (Py_ssize_t k = 0; k < n; k++) {
            scores[k] = dot(job->output + k * dim, hidden, dim);
            if (scores[k] > max) max = scores[k];
        }
        for (Py_ssize_t k = 0; k < n; k++) sum += (scores[k] = expf(scores[k] - max));
        for (Py_ssize_t k = 0; k < n; k++) {
            float alpha = lr * ((k == target ? 1.0f : 0.0f) - scores[k] / sum);
            add_scaled(grad, job->output + k * dim, alpha, dim);
            add_scaled(job->output + k * dim, hidden, alpha, dim);
        }
    } else {
        for (Py_ssize_t k = 0; k < n; k++) {
            float label = 0.0f;
            for (Py_ssize_t j = 0; j < nline_labels; j++)
                if (labels[j] == k) label = 1.0f;
            float alpha = lr * (label - sigmoid(dot(job->output + k * dim, hidden, dim)));
            add_scaled(grad, job->output + k * dim, alpha, dim);
            add_scaled(job->output + k * dim, hidden, alpha, dim);
        }
    }
}

static void run(const Job *job, float *work)
{
    Py_ssize_t dim = job->dim;
    float *hidden = work, *grad = work + dim, *scores = work + 2 * dim;
    uint64_t rng = job->seed;
    Py_ssize_t inputs_before = 0;
    for (Py_ssize_t line = 0; line < job->num_lines; line++) {
        Py_ssize_t begin = job->line_offsets[line];
        Py_ssize_t end = line + 1 < job->num_lines ? job->line_offsets[line + 1] : job->num_inputs;
        Py_ssize_t count = end - begin;
        const int64_t *labels = job->labels + job->label_offsets[line];
        Py_ssize_t nline_labels = job->label_offsets[line + 1] - job->label_offsets[line];
        float lr = (float)(job->lr_start + (job->lr_end - job->lr_start) * inputs_before / (double)job->num_inputs);
        inputs_before += count;
        if (count == 0 || nline_labels == 0) continue;
        memset(hidden, 0, dim * sizeof(float));
        memset(grad, 0, dim * sizeof(float));
        for (Py_ssize_t j = begin; j < end; j++)
            add_scaled(hidden, job->input + (Py_ssize_t)job->rows[job->local[j]] * dim, 1.0f, dim);
        for (Py_ssize_t d = 0; d < dim; d++) hidden[d] /= (float)count;
        output_step(job, hidden, grad, scores, labels, nline_labels, lr, &rng);
        for (Py_ssize_t j = begin; j < end; j++)
            add_scaled(job->input + (Py_ssize_t)job->rows[job->local[j]] * dim, grad, 1.0f / (float)count, dim);
    }
}

static int check_range(const char *name, const void *values, int wide, Py_ssize_t n, int64_t below)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t v = wide ? ((const int64_t *)values)[i] : ((const int32_t *)values)[i];
        if (v < 0 || v >= below) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] = %lld: expected a value in [0, %lld)", name, i, (long long)v,
                         (long long)below);
            return -1;
        }
    }
    return 0;
}

static PyObject *train(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"input", "output", "rows", "local_inputs", "line_offsets", "labels", "label_offsets",
                            "lr_start", "lr_end", "loss", "seed", NULL};
    PyObject *objs[7];
    Job job;
    unsigned long long seed;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOOddiK", names, &objs[0], &objs[1], &objs[2], &objs[3],
                                     &objs[4], &objs[5], &objs[6], &job.lr_start, &job.lr_end, &job.loss, &seed))
        return NULL;
    job.seed = seed;
    Array a[7];
    memset(a, 0, sizeof(a));
    static const char *arg_names[] = {"input", "output", "rows", "local_inputs", "line_offsets", "labels",
                                      "label_offsets"};
    static const char *kinds[] = {"f", "f", "i", "i", "i", "lq", "lq"};
    static const Py_ssize_t sizes[] = {4, 4, 4, 4, 4, 8, 8};
    for (int i = 0; i < 7; i++)
        if (get_array(objs[i], &a[i], arg_names[i], kinds[i], sizes[i], i < 2, 0) < 0) goto fail;
    if (a[0].view.ndim != 2 || a[1].view.ndim != 2 || a[0].view.shape[1] != a[1].view.shape[1]) {
        PyErr_SetString(PyExc_ValueError, "input and output: expected two matrices with the same number of columns");
        goto fail;
    }
    if (job.loss != LOSS_SOFTMAX && job.loss != LOSS_OVA) {
        PyErr_Format(PyExc_ValueError, "loss = %d: expected 0 (softmax) or 1 (one-vs-all)", job.loss);
        goto fail;
    }
    job.input = a[0].view.buf;
    job.output = a[1].view.buf;
    job.dim = a[0].view.shape[1];
    job.nlabels = a[1].view.shape[0];
    job.rows = a[2].view.buf;
    job.local = a[3].view.buf;
    job.line_offsets = a[4].view.buf;
    job.labels = a[5].view.buf;
    job.label_offsets = a[6].view.buf;
    job.num_lines = items(&a[4]);
    job.num_inputs = items(&a[3]);
    if (items(&a[6]) != job.num_lines + 1) {
        PyErr_SetString(PyExc_ValueError, "label_offsets: expected one more item than line_offsets");
        goto fail;
    }
    if (check_range("rows", job.rows, 0, items(&a[2]), a[0].view.shape[0]) < 0 ||
        check_range("local_inputs", job.local, 0, job.num_inputs, items(&a[2])) < 0 ||
        check_range("line_offsets", job.line_offsets, 0, job.num_lines, job.num_inputs + 1) < 0 ||
        check_range("label_offsets", job.label_offsets, 1, job.num_lines + 1, items(&a[5]) + 1) < 0 ||
        check_range("labels", job.labels, 1, items(&a[5]), job.nlabels) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < job.num_lines; i++) {
        Py_ssize_t end = i + 1 < job.num_lines ? job.line_offsets[i + 1] : job.num_inputs;
        if (end < job.line_offsets[i] || job.label_offsets[i + 1] < job.label_offsets[i]) {
            PyErr_Format(PyExc_ValueError, "line %zd: offsets must not decrease", i);
            goto fail;
        }
    }
    float *work = malloc((2 * job.dim + job.nlabels) * sizeof(float));
    if (work == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    run(&job, work);
    Py_END_ALLOW_THREADS
    free(work);
    release(a, 7);
    Py_RETURN_NONE;
fail:
    release(a, 7);
    return NULL;
}

/* The label with the highest score output . hidden of each line (softmax and one-vs-all rank
 * alike); lines without inputs get label 0 (their hidden vector is zero: all scores tie). */
static PyObject *top_labels(PyObject *self, PyObject *args)
{
    PyObject *objs[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4])) return NULL;
    Array a[5];
    memset(a, 0, sizeof(a));
    static const char *arg_names[] = {"input", "output", "inputs", "offsets", "out"};
    static const char *kinds[] = {"f", "f", "i", "lq", "lq"};
    static const Py_ssize_t sizes[] = {4, 4, 4, 8, 8};
    for (int i = 0; i < 5; i++)
        if (get_array(objs[i], &a[i], arg_names[i], kinds[i], sizes[i], i == 4, 0) < 0) goto fail;
    if (a[0].view.ndim != 2 || a[1].view.ndim != 2 || a[0].view.shape[1] != a[1].view.shape[1]) {
        PyErr_SetString(PyExc_ValueError, "input and output: expected two matrices with the same number of columns");
        goto fail;
    }
    const float *input = a[0].view.buf, *output = a[1].view.buf;
    Py_ssize_t dim = a[0].view.shape[1], nlabels = a[1].view.shape[0], num_lines = items(&a[4]);
    const int32_t *inputs = a[2].view.buf;
    const int64_t *offsets = a[3].view.buf;
    int64_t *out = a[4].view.buf;
    if (items(&a[3]) != num_lines + 1 || offsets[0] != 0 || offsets[num_lines] != items(&a[2])) {
        PyErr_SetString(PyExc_ValueError, "offsets: expected one more item than out, from 0 to the number of inputs");
        goto fail;
    }
    if (check_range("offsets", offsets, 1, num_lines + 1, items(&a[2]) + 1) < 0 ||
        check_range("inputs", inputs, 0, items(&a[2]), a[0].view.shape[0]) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < num_lines; i++)
        if (offsets[i + 1] < offsets[i]) {
            PyErr_Format(PyExc_ValueError, "offsets[%zd]: offsets must not decrease", i + 1);
            goto fail;
        }
    float *hidden = malloc(dim * sizeof(float));
    if (hidden == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t line = 0; line < num_lines; line++) {
        Py_ssize_t count = offsets[line + 1] - offsets[line];
        memset(hidden, 0, dim * sizeof(float));
        for (Py_ssize_t j = offsets[line]; j < offsets[line + 1]; j++)
            add_scaled(hidden, input + (Py_ssize_t)inputs[j] * dim, 1.0f, dim);
        if (count > 0)
            for (Py_ssize_t d = 0; d < dim; d++) hidden[d] /= (float)count;
        int64_t best = 0;
        float best_score = -INFINITY;
        for (Py_ssize_t k = 0; k < nlabels; k++) {
            float score = dot(output + k * dim, hidden, dim);
            if (score > best_score) best_score = score, best = k;
        }
        out[line] = best;
    }
    Py_END_ALLOW_THREADS
    free(hidden);
    release(a, 5);
    Py_RETURN_NONE;
fail:
    release(a, 5);
    return NULL;
}

/* Fill a float32 array with numbers uniform in [low, high), from splitmix64 (24 random bits each). */
static PyObject *uniform_(PyObject *self, PyObject *args)
{
    PyObject *obj;
    double low, high;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OddK", &obj, &low, &high, &seed)) return NULL;
    Array a;
    if (get_array(obj, &a, "matrix", "f", 4, 1, 0) < 0) {
        release(&a, 1);
        return NULL;
    }
    float *values = a.view.buf;
    Py_ssize_t n = items(&a);
    uint64_t state = seed;
    const float scale = (float)((high - low) / 16777216.0), base = (float)low;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i += 2) {
        uint64_t r = next_random(&state);
        values[i] = base + scale * (float)(r >> 40);
        if (i + 1 < n) values[i + 1] = base + scale * (float)((r >> 8) & 0xFFFFFF);
    }
    Py_END_ALLOW_THREADS
    release(&a, 1);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"train", (PyCFunction)(void (*)(void))train, METH_VARARGS | METH_KEYWORDS,
     "train(input, output, rows, local_inputs, line_offsets, labels, label_offsets, lr_start, lr_end, loss, seed): "
     "fastText's per-line supervised SGD over one planned batch, in place"},
    {"top_labels", top_labels, METH_VARARGS,
     "top_labels(input, output, inputs, offsets, out): the best-scoring label of each line into out"},
    {"uniform_", uniform_, METH_VARARGS, "uniform_(matrix, low, high, seed): fill with uniform numbers in place"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sgd", "fastText's per-line supervised SGD", -1, methods};

PyMODINIT_FUNC PyInit__sgd(void) { return PyModule_Create(&module); }
