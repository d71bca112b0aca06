/* Python bindings of the native word2vec engine (module `_native`).
 *
 *   Tokenizer(max_length)                       tokenizer.c
 *   train(...)                                  a job of Hogwild threads over blocks of a shard
 *   replay(...)                                 given windows, one after the other (tests)
 *   alias_table(weights) -> (thresholds, aliases)
 *   subword_table(words, minn, maxn, buckets)   subwords.c
 *   format_rows(words, matrix, dim, threads)    vectors.txt's lines (text.c)
 *   changed_rows(a, b, dim) -> flags            which rows of two matrices differ (model combination)
 *
 * Arrays come in through the buffer protocol (numpy arrays), checked for item size, kind and
 * length here; their contents (word ids below the vocabulary size, rows below the matrix
 * size) are the caller's to guarantee. The GIL is released while threads train.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "buffers.h"

#include "native.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern PyTypeObject TokenizerType;

#define F32 "f"
#define I32 "i"
#define I64 "lq"
#define U32 "I"

/* Subword bags: both None, or CSR offsets (n_words + 1) and rows below `rows`. */
static int get_bags(PyObject *offsets, PyObject *bag_rows, Array *a, Py_ssize_t n_words)
{
    if (offsets == Py_None && bag_rows == Py_None) return 0;
    if (offsets == Py_None || bag_rows == Py_None) {
        PyErr_SetString(PyExc_ValueError, "bag_offsets and bag_rows: give both or neither");
        return -1;
    }
    if (get_array(offsets, &a[0], "bag_offsets", I64, 8, 0, n_words + 1) < 0) return -1;
    const int64_t *o = a[0].view.buf;
    if (get_array(bag_rows, &a[1], "bag_rows", I64, 8, 0, o[n_words]) < 0) return -1;
    for (Py_ssize_t w = 0; w < n_words; w++)
        if (o[w] < 0 || o[w + 1] <= o[w]) {
            PyErr_SetString(PyExc_ValueError, "bag_offsets: every word needs at least one row, in order");
            return -1;
        }
    return 0;
}

static PyObject *train(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"mode", "inputs", "outputs", "ids", "sentence_starts", "block_sentences", "keep",
                            "alias_threshold", "alias_index", "bag_offsets", "bag_rows", "dim", "window",
                            "negatives", "windows_per_negative_set", "rate", "epoch", "seed", "first_block",
                            "last_block", "threads", "progress", NULL};
    int mode, dim, window, negatives, per_set, threads;
    double rate[5], epoch;
    unsigned long long seed;
    long long first_block, last_block;
    PyObject *o[10], *progress_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iOOOOOOOOOO$iiii(ddddd)dKLLiO", names, &mode, &o[0], &o[1],
                                     &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &dim, &window,
                                     &negatives, &per_set, &rate[0], &rate[1], &rate[2], &rate[3], &rate[4],
                                     &epoch, &seed, &first_block, &last_block, &threads, &progress_obj))
        return NULL;
    if ((mode != MODE_CBOW && mode != MODE_SKIPGRAM) || dim < 1 || window < 1 || negatives < 0 || per_set < 1) {
        PyErr_SetString(PyExc_ValueError, "mode, dim, window, negatives or windows_per_negative_set out of range");
        return NULL;
    }
    enum { IN, OUT, IDS, STARTS, BLOCKS, KEEP, THRESHOLD, ALIAS, OFFSETS, ROWS, PROGRESS, N };
    Array a[N];
    memset(a, 0, sizeof(a));
    PyObject *result = NULL;
    if (get_array(o[5], &a[KEEP], "keep", U32, 4, 0, 1) < 0) goto done;
    const Py_ssize_t n_words = items(&a[KEEP]);
    if (get_array(o[0], &a[IN], "inputs", F32, 4, 1, n_words * dim) < 0 ||
        get_array(o[1], &a[OUT], "outputs", F32, 4, 1, n_words * dim) < 0 ||
        get_array(o[2], &a[IDS], "ids", I32, 4, 0, 0) < 0 ||
        get_array(o[3], &a[STARTS], "sentence_starts", I64, 8, 0, 1) < 0 ||
        get_array(o[4], &a[BLOCKS], "block_sentences", I64, 8, 0, 1) < 0 ||
        get_array(o[6], &a[THRESHOLD], "alias_threshold", U32, 4, 0, n_words) < 0 ||
        get_array(o[7], &a[ALIAS], "alias_index", I32, 4, 0, n_words) < 0 ||
        get_bags(o[8], o[9], &a[OFFSETS], n_words) < 0 ||
        get_array(progress_obj, &a[PROGRESS], "progress", I64, 8, 1, 1) < 0)
        goto done;
    const int64_t *starts = a[STARTS].view.buf, *blocks = a[BLOCKS].view.buf;
    const Py_ssize_t n_sentences = items(&a[STARTS]) - 1, n_blocks = items(&a[BLOCKS]) - 1;
    const Py_ssize_t rows = items(&a[IN]) / dim;
    if (starts[0] != 0 || starts[n_sentences] != items(&a[IDS]) || blocks[0] < 0 || blocks[n_blocks] > n_sentences ||
        first_block < 0 || last_block > n_blocks || first_block > last_block) {
        PyErr_SetString(PyExc_ValueError, "sentence_starts, block_sentences or the block range do not fit the ids");
        goto done;
    }
    int64_t max_sentence = 0;
    for (Py_ssize_t s = 0; s < n_sentences; s++) {
        if (starts[s + 1] < starts[s]) {
            PyErr_SetString(PyExc_ValueError, "sentence_starts must not decrease");
            goto done;
        }
        if (starts[s + 1] - starts[s] > max_sentence) max_sentence = starts[s + 1] - starts[s];
    }
    for (Py_ssize_t b = 0; b < n_blocks; b++)
        if (blocks[b + 1] < blocks[b]) {
            PyErr_SetString(PyExc_ValueError, "block_sentences must not decrease");
            goto done;
        }
    if (a[OFFSETS].held) {
        const int64_t *bag_rows = a[ROWS].view.buf;
        for (Py_ssize_t r = 0; r < items(&a[ROWS]); r++)
            if (bag_rows[r] < 0 || bag_rows[r] >= rows) {
                PyErr_SetString(PyExc_ValueError, "bag_rows: a row outside the input matrix");
                goto done;
            }
    }
    Job job = {
        .mode = mode,
        .net = {a[IN].view.buf, a[OUT].view.buf, a[IN].view.buf, a[OUT].view.buf, dim,
                a[OFFSETS].held ? a[OFFSETS].view.buf : NULL, a[OFFSETS].held ? a[ROWS].view.buf : NULL},
        .ids = a[IDS].view.buf,
        .sentence_starts = starts,
        .block_sentences = blocks,
        .keep = a[KEEP].view.buf,
        .alias_threshold = a[THRESHOLD].view.buf,
        .alias_index = a[ALIAS].view.buf,
        .n_words = n_words,
        .window = window,
        .negatives = negatives,
        .windows_per_negative_set = per_set,
        .rate_start = rate[0], .rate_end = rate[1], .rate_origin = rate[2], .rate_epochs = rate[3],
        .rate_floor = rate[4],
        .epoch = epoch,
        .shard_tokens = items(&a[IDS]) > 0 ? items(&a[IDS]) : 1,
        .max_sentence = max_sentence,
        .seed = seed,
        .first_block = first_block,
        .last_block = last_block,
        .progress = (_Atomic int64_t *)a[PROGRESS].view.buf,
    };
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = run_job(&job, threads);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    release(a, N);
    return result;
}

static PyObject *replay(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"mode", "in_read", "out_read", "in_write", "out_write", "context", "context_mask",
                            "targets", "target_mask", "lr", "bag_offsets", "bag_rows", "dim", NULL};
    int mode, dim;
    PyObject *o[11];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iOOOOOOOOOOO$i", names, &mode, &o[0], &o[1], &o[2], &o[3],
                                     &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &o[10], &dim))
        return NULL;
    if ((mode != MODE_CBOW && mode != MODE_SKIPGRAM) || dim < 1) {
        PyErr_SetString(PyExc_ValueError, "mode or dim out of range");
        return NULL;
    }
    enum { IN_R, OUT_R, IN_W, OUT_W, CONTEXT, CONTEXT_MASK, TARGETS, TARGET_MASK, LR, OFFSETS, ROWS, N };
    Array a[N];
    memset(a, 0, sizeof(a));
    PyObject *result = NULL;
    if (get_array(o[8], &a[LR], "lr", F32, 4, 0, 1) < 0) goto done;
    const Py_ssize_t windows = items(&a[LR]);
    if (get_array(o[1], &a[OUT_R], "out_read", F32, 4, 0, dim) < 0) goto done;
    const Py_ssize_t n_words = items(&a[OUT_R]) / dim;
    if (get_array(o[0], &a[IN_R], "in_read", F32, 4, 0, n_words * dim) < 0 ||
        get_array(o[2], &a[IN_W], "in_write", F32, 4, 1, items(&a[IN_R])) < 0 ||
        get_array(o[3], &a[OUT_W], "out_write", F32, 4, 1, items(&a[OUT_R])) < 0 ||
        get_array(o[4], &a[CONTEXT], "context", I64, 8, 0, windows) < 0 ||
        get_array(o[5], &a[CONTEXT_MASK], "context_mask", F32, 4, 0, items(&a[CONTEXT])) < 0 ||
        get_array(o[6], &a[TARGETS], "targets", I64, 8, 0, windows) < 0 ||
        get_array(o[7], &a[TARGET_MASK], "target_mask", F32, 4, 0, items(&a[TARGETS])) < 0 ||
        get_bags(o[9], o[10], &a[OFFSETS], n_words) < 0)
        goto done;
    const int width = (int)(items(&a[CONTEXT]) / windows), n_targets = (int)(items(&a[TARGETS]) / windows);
    const int64_t *context = a[CONTEXT].view.buf, *targets = a[TARGETS].view.buf;
    const float *target_mask = a[TARGET_MASK].view.buf;
    const Py_ssize_t rows = items(&a[IN_R]) / dim;
    for (Py_ssize_t i = 0; i < windows * width; i++)
        if (context[i] < 0 || context[i] >= (a[OFFSETS].held ? n_words : rows)) {
            PyErr_SetString(PyExc_ValueError, "context: a word outside the vocabulary");
            goto done;
        }
    for (Py_ssize_t i = 0; i < windows * n_targets; i++)
        if (targets[i] < 0 || targets[i] >= n_words || (i % n_targets == 0 && target_mask[i] == 0)) {
            PyErr_SetString(PyExc_ValueError, "targets: a word outside the vocabulary, or a masked centre word");
            goto done;
        }
    const Net net = {a[IN_R].view.buf, a[OUT_R].view.buf, a[IN_W].view.buf, a[OUT_W].view.buf, dim,
                     a[OFFSETS].held ? a[OFFSETS].view.buf : NULL, a[OFFSETS].held ? a[ROWS].view.buf : NULL};
    if (replay_windows(&net, mode, windows, width, n_targets, context, a[CONTEXT_MASK].view.buf, targets,
                       target_mask, a[LR].view.buf) != 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    release(a, N);
    return result;
}

static PyObject *alias_table(PyObject *self, PyObject *arg)
{
    Array weights;
    if (get_array(arg, &weights, "weights", "d", 8, 0, 1) < 0) {
        release(&weights, 1);
        return NULL;
    }
    const Py_ssize_t n = items(&weights);
    PyObject *threshold = PyBytes_FromStringAndSize(NULL, n * 4), *alias = PyBytes_FromStringAndSize(NULL, n * 4);
    PyObject *result = NULL;
    if (threshold != NULL && alias != NULL) {
        if (build_alias(weights.view.buf, n, (uint32_t *)PyBytes_AS_STRING(threshold),
                        (int32_t *)PyBytes_AS_STRING(alias)) != 0)
            PyErr_SetString(PyExc_ValueError, "weights: expected positive weights (or out of memory)");
        else
            result = PyTuple_Pack(2, threshold, alias);
    }
    Py_XDECREF(threshold);
    Py_XDECREF(alias);
    release(&weights, 1);
    return result;
}

static PyObject *format_rows(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"words", "matrix", "dim", "threads", NULL};
    PyObject *words;
    PyObject *matrix;
    int dim, threads;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!Oii", names, &PyList_Type, &words, &matrix, &dim, &threads))
        return NULL;
    const Py_ssize_t n = PyList_GET_SIZE(words);
    Array a;
    if (dim < 1 || get_array(matrix, &a, "matrix", F32, 4, 0, n * (Py_ssize_t)dim) < 0) {
        if (dim < 1) PyErr_SetString(PyExc_ValueError, "dim must be positive");
        else release(&a, 1);
        return NULL;
    }
    size_t word_bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyList_GET_ITEM(words, i);
        if (!PyBytes_Check(w)) {
            release(&a, 1);
            return PyErr_Format(PyExc_TypeError, "words[%zd]: expected bytes", i);
        }
        word_bytes += (size_t)PyBytes_GET_SIZE(w) + 1;
    }
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    TextPart parts[64];
    pthread_t ids[64];
    int started[64] = {0};
    for (int t = 0; t < threads; t++)
        parts[t] = (TextPart){a.view.buf, dim, n * t / threads, n * (t + 1) / threads, NULL, 0, 0, 0};
    Py_BEGIN_ALLOW_THREADS
    for (int t = 1; t < threads; t++) started[t] = pthread_create(&ids[t], NULL, format_part, &parts[t]) == 0;
    format_part(&parts[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(ids[t], NULL);
        else format_part(&parts[t]);
    }
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    size_t total = word_bytes;
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        total += parts[t].len;
        failed |= parts[t].failed;
    }
    if (failed) {
        PyErr_NoMemory();
    } else if ((result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total)) != NULL) {
        char *out = PyBytes_AS_STRING(result);
        for (int t = 0; t < threads; t++) {
            const char *text = parts[t].text;
            for (Py_ssize_t r = parts[t].first; r < parts[t].last; r++) {
                PyObject *w = PyList_GET_ITEM(words, r);
                memcpy(out, PyBytes_AS_STRING(w), (size_t)PyBytes_GET_SIZE(w));
                out += PyBytes_GET_SIZE(w);
                *out++ = ' ';
                const char *end = memchr(text, '\n', parts[t].text + parts[t].len - text);
                const size_t line = (size_t)(end - text) + 1;
                memcpy(out, text, line);
                out += line;
                text += line;
            }
        }
    }
    for (int t = 0; t < threads; t++) free(parts[t].text);
    release(&a, 1);
    return result;
}

static PyObject *subword_table(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"words", "minn", "maxn", "buckets", NULL};
    PyObject *words;
    int minn, maxn;
    long long buckets;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!iiL", names, &PyList_Type, &words, &minn, &maxn, &buckets))
        return NULL;
    if (minn < 1 || maxn < minn || buckets < 1) {
        PyErr_SetString(PyExc_ValueError, "expected 1 <= minn <= maxn and buckets >= 1");
        return NULL;
    }
    const Py_ssize_t n = PyList_GET_SIZE(words);
    size_t longest = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyList_GET_ITEM(words, i);
        if (!PyBytes_Check(w)) return PyErr_Format(PyExc_TypeError, "words[%zd]: expected bytes", i);
        if ((size_t)PyBytes_GET_SIZE(w) > longest) longest = (size_t)PyBytes_GET_SIZE(w);
    }
    unsigned char *wrapped = malloc(longest + 2);
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * (Py_ssize_t)sizeof(int64_t));
    if (wrapped == NULL || offsets == NULL) {
        free(wrapped);
        Py_XDECREF(offsets);
        return PyErr_NoMemory();
    }
    int64_t *o = (int64_t *)PyBytes_AS_STRING(offsets), total = 0;
    for (Py_ssize_t i = 0; i < n; i++) { /* a word's own row first; "</s>" has no n-grams, as in fastText */
        PyObject *w = PyList_GET_ITEM(words, i);
        const int eos = PyBytes_GET_SIZE(w) == 4 && memcmp(PyBytes_AS_STRING(w), "</s>", 4) == 0;
        o[i] = total;
        total += 1 + (eos ? 0 : word_ngrams(PyBytes_AS_STRING(w), (size_t)PyBytes_GET_SIZE(w), minn, maxn, buckets,
                                             n, NULL, wrapped));
    }
    o[n] = total;
    PyObject *rows = PyBytes_FromStringAndSize(NULL, total * (Py_ssize_t)sizeof(int64_t));
    if (rows == NULL) {
        free(wrapped);
        Py_DECREF(offsets);
        return NULL;
    }
    int64_t *r = (int64_t *)PyBytes_AS_STRING(rows);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyList_GET_ITEM(words, i);
        r[o[i]] = i;
        if (o[i + 1] - o[i] > 1)
            word_ngrams(PyBytes_AS_STRING(w), (size_t)PyBytes_GET_SIZE(w), minn, maxn, buckets, n, r + o[i] + 1,
                        wrapped);
    }
    free(wrapped);
    PyObject *result = PyTuple_Pack(2, offsets, rows);
    Py_DECREF(offsets);
    Py_DECREF(rows);
    return result;
}

/* One byte a row: 1 where rows of `a` and `b` (float32, dim columns) differ in any bit. */
static PyObject *changed_rows(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"a", "b", "dim", NULL};
    PyObject *ao, *bo;
    int dim;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOi", names, &ao, &bo, &dim)) return NULL;
    Array a[2] = {0};
    PyObject *result = NULL;
    if (dim < 1) {
        PyErr_SetString(PyExc_ValueError, "dim: expected a positive number of columns");
        return NULL;
    }
    if (get_array(ao, &a[0], "a", F32, 4, 0, 0) < 0 || get_array(bo, &a[1], "b", F32, 4, 0, items(&a[0])) < 0)
        goto done;
    const Py_ssize_t rows = items(&a[0]) / dim;
    result = PyBytes_FromStringAndSize(NULL, rows);
    if (result == NULL) goto done;
    unsigned char *flags = (unsigned char *)PyBytes_AS_STRING(result);
    const char *x = a[0].view.buf, *y = a[1].view.buf;
    const size_t row_bytes = sizeof(float) * (size_t)dim;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) flags[r] = memcmp(x + r * row_bytes, y + r * row_bytes, row_bytes) != 0;
    Py_END_ALLOW_THREADS
done:
    release(a, 2);
    return result;
}

static PyMethodDef functions[] = {
    {"train", (PyCFunction)(void (*)(void))train, METH_VARARGS | METH_KEYWORDS,
     "Train blocks [first_block, last_block) of a shard with Hogwild threads (see train.c)."},
    {"replay", (PyCFunction)(void (*)(void))replay, METH_VARARGS | METH_KEYWORDS,
     "Apply given windows one after the other, reading *_read and adding into *_write."},
    {"format_rows", (PyCFunction)(void (*)(void))format_rows, METH_VARARGS | METH_KEYWORDS,
     "vectors.txt's lines: b'word v1 ... vdim\\n' per row, each value as '%.9g' formats it, by `threads` threads."},
    {"subword_table", (PyCFunction)(void (*)(void))subword_table, METH_VARARGS | METH_KEYWORDS,
     "fastText's n-gram rows of every word (UTF-8 bytes): (int64 offsets, int64 rows) as bytes, own row first."},
    {"changed_rows", (PyCFunction)(void (*)(void))changed_rows, METH_VARARGS | METH_KEYWORDS,
     "One byte a row of two float32 matrices of `dim` columns: 1 where they differ (as bytes)."},
    {"alias_table", (PyCFunction)alias_table, METH_O,
     "Vose's alias table of float64 weights: (uint32 thresholds, int32 aliases) as bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "The native word2vec engine's compiled parts.", -1, functions,
};

PyMODINIT_FUNC PyInit__native(void)
{
    format_init();
    if (PyType_Ready(&TokenizerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&TokenizerType);
    if (PyModule_AddObject(m, "Tokenizer", (PyObject *)&TokenizerType) < 0) {
        Py_DECREF(&TokenizerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
