/* Tokenizer: UTF-8 text -> provisional word numbers and sentence lengths, in one pass.
 *
 * The same tokens and sentences as word2vec/corpus.py's read_sentences (Python's str.split()
 * on each '\n'-separated line, lines cut every max_length tokens), at C speed: a token is a run
 * of bytes between whitespace characters, which are ASCII's (\t \n \v \f \r \x1c-\x1f space)
 * and the UTF-8 encodings of Unicode's (U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000). Each new token gets the next number; the caller decodes the
 * words (invalid UTF-8 replaced, as Python decodes it), ranks them and renumbers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    char *arena; /* the words' bytes, one after the other */
    size_t arena_len, arena_cap;
    size_t *word_start;
    uint32_t *word_len;
    uint64_t *word_hash;
    size_t n_words, words_cap;
    int32_t *table; /* open addressing: a word number, or -1 */
    size_t table_cap;
    int32_t *ids; /* the corpus as word numbers */
    size_t n_ids, ids_cap;
    int64_t *lengths; /* tokens per sentence */
    size_t n_lengths, lengths_cap;
    int64_t in_sentence;
    int64_t max_length;
    char *token; /* a token cut by the end of a chunk */
    size_t token_len, token_cap;
    unsigned char carry[4]; /* the start of a character that may be whitespace, cut by the end of a chunk */
    size_t carry_len;
} Tokenizer;

static const unsigned char ASCII_SPACE[128] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, [' '] = 1,
};

/* Bytes of the whitespace character at p (0: not whitespace), or -1 when `avail` bytes cannot tell. */
static int whitespace_at(const unsigned char *p, size_t avail)
{
    const unsigned char c = p[0];
    if (c < 0x80) return ASCII_SPACE[c];
    if (c == 0xC2) {
        if (avail < 2) return -1;
        return (p[1] == 0x85 || p[1] == 0xA0) ? 2 : 0;
    }
    if (c != 0xE1 && c != 0xE2 && c != 0xE3) return 0;
    const unsigned char second = c == 0xE1 ? 0x9A : 0x80;
    if (avail < 2) return -1;
    if (p[1] != second && !(c == 0xE2 && p[1] == 0x81)) return 0;
    if (avail < 3) return -1;
    const unsigned char third = p[2];
    if (c == 0xE1) return third == 0x80 ? 3 : 0;
    if (c == 0xE3) return third == 0x80 ? 3 : 0;
    if (p[1] == 0x81) return third == 0x9F ? 3 : 0;
    return ((third >= 0x80 && third <= 0x8A) || third == 0xA8 || third == 0xA9 || third == 0xAF) ? 3 : 0;
}

static int grow(void **data, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : 1024;
    while (cap2 < need) cap2 *= 2;
    void *p = realloc(*data, cap2 * item);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *data = p;
    *cap = cap2;
    return 0;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int rehash(Tokenizer *t, size_t cap)
{
    int32_t *table = malloc(sizeof(int32_t) * cap);
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(table, 0xff, sizeof(int32_t) * cap);
    for (size_t w = 0; w < t->n_words; w++) {
        size_t slot = t->word_hash[w] & (cap - 1);
        while (table[slot] >= 0) slot = (slot + 1) & (cap - 1);
        table[slot] = (int32_t)w;
    }
    free(t->table);
    t->table = table;
    t->table_cap = cap;
    return 0;
}

static int end_sentence(Tokenizer *t)
{
    if (t->in_sentence == 0) return 0;
    if (grow((void **)&t->lengths, &t->lengths_cap, t->n_lengths + 1, sizeof(int64_t)) < 0) return -1;
    t->lengths[t->n_lengths++] = t->in_sentence;
    t->in_sentence = 0;
    return 0;
}

/* The number of the token s[0..n), new or known; appended to the corpus. */
static int add_token(Tokenizer *t, const char *s, size_t n)
{
    if (2 * (t->n_words + 1) > t->table_cap && rehash(t, t->table_cap ? 2 * t->table_cap : 1 << 16) < 0) return -1;
    const uint64_t h = fnv1a(s, n);
    size_t slot = h & (t->table_cap - 1);
    int32_t word;
    for (;;) {
        word = t->table[slot];
        if (word < 0) break;
        if (t->word_hash[word] == h && t->word_len[word] == n && memcmp(t->arena + t->word_start[word], s, n) == 0) break;
        slot = (slot + 1) & (t->table_cap - 1);
    }
    if (word < 0) {
        if (t->n_words >= INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "more than 2^31 distinct words");
            return -1;
        }
        if (grow((void **)&t->arena, &t->arena_cap, t->arena_len + n, 1) < 0 ||
            grow((void **)&t->word_start, &t->words_cap, t->n_words + 1, sizeof(size_t)) < 0)
            return -1;
        uint32_t *len2 = realloc(t->word_len, sizeof(uint32_t) * t->words_cap);
        if (len2 == NULL) return PyErr_NoMemory(), -1;
        t->word_len = len2;
        uint64_t *hash2 = realloc(t->word_hash, sizeof(uint64_t) * t->words_cap);
        if (hash2 == NULL) return PyErr_NoMemory(), -1;
        t->word_hash = hash2;
        word = (int32_t)t->n_words++;
        memcpy(t->arena + t->arena_len, s, n);
        t->word_start[word] = t->arena_len;
        t->word_len[word] = (uint32_t)n;
        t->word_hash[word] = h;
        t->arena_len += n;
        t->table[slot] = word;
    }
    if (grow((void **)&t->ids, &t->ids_cap, t->n_ids + 1, sizeof(int32_t)) < 0) return -1;
    t->ids[t->n_ids++] = word;
    if (++t->in_sentence == t->max_length) return end_sentence(t);
    return 0;
}

/* A token ends after s[0..n) (with any bytes kept from the previous chunk before it). */
static int end_token(Tokenizer *t, const char *s, size_t n)
{
    if (t->token_len == 0) return add_token(t, s, n);
    if (grow((void **)&t->token, &t->token_cap, t->token_len + n, 1) < 0) return -1;
    memcpy(t->token + t->token_len, s, n);
    const size_t total = t->token_len + n;
    t->token_len = 0;
    return add_token(t, t->token, total);
}

/* Tokens of buf[0..len); stops early (leaving bytes for the next chunk) where a character that
 * may be whitespace is cut, unless `final`. */
static int scan(Tokenizer *t, const unsigned char *buf, size_t len, int final)
{
    size_t i = 0, start = 0;
    int in_token = t->token_len > 0;
    while (i < len) {
        const unsigned char c = buf[i];
        int w = c < 0x80 ? ASCII_SPACE[c] : whitespace_at(buf + i, len - i);
        if (w < 0) {
            if (!final) break;
            w = 0;
        }
        if (w == 0) {
            if (!in_token) {
                in_token = 1;
                start = i;
            }
            i++;
            continue;
        }
        if (in_token) {
            if (end_token(t, (const char *)buf + start, i - start) < 0) return -1;
            in_token = 0;
        }
        if (c == '\n' && end_sentence(t) < 0) return -1;
        i += (size_t)w;
    }
    if (in_token && i > start) {
        const size_t n = i - start;
        if (grow((void **)&t->token, &t->token_cap, t->token_len + n, 1) < 0) return -1;
        memcpy(t->token + t->token_len, buf + start, n);
        t->token_len += n;
    }
    t->carry_len = len - i;
    memcpy(t->carry, buf + i, t->carry_len);
    return 0;
}

static PyObject *feed(Tokenizer *t, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    int status;
    if (t->carry_len == 0) {
        status = scan(t, view.buf, (size_t)view.len, 0);
    } else {
        unsigned char *joined = malloc(t->carry_len + (size_t)view.len);
        if (joined == NULL) {
            PyBuffer_Release(&view);
            return PyErr_NoMemory();
        }
        memcpy(joined, t->carry, t->carry_len);
        memcpy(joined + t->carry_len, view.buf, (size_t)view.len);
        status = scan(t, joined, t->carry_len + (size_t)view.len, 0);
        free(joined);
    }
    PyBuffer_Release(&view);
    if (status < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *finish(Tokenizer *t, PyObject *Py_UNUSED(ignored))
{
    unsigned char rest[4];
    const size_t n = t->carry_len;
    memcpy(rest, t->carry, n);
    if (scan(t, rest, n, 1) < 0) return NULL;
    if (t->token_len > 0 && end_token(t, "", 0) < 0) return NULL;
    if (end_sentence(t) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *words(Tokenizer *t, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New((Py_ssize_t)t->n_words);
    if (list == NULL) return NULL;
    for (size_t w = 0; w < t->n_words; w++) {
        PyObject *word = PyBytes_FromStringAndSize(t->arena + t->word_start[w], (Py_ssize_t)t->word_len[w]);
        if (word == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)w, word);
    }
    return list;
}

static PyObject *ids(Tokenizer *t, PyObject *Py_UNUSED(ignored))
{
    return PyBytes_FromStringAndSize((const char *)t->ids, (Py_ssize_t)(t->n_ids * sizeof(int32_t)));
}

static PyObject *lengths(Tokenizer *t, PyObject *Py_UNUSED(ignored))
{
    return PyBytes_FromStringAndSize((const char *)t->lengths, (Py_ssize_t)(t->n_lengths * sizeof(int64_t)));
}

static PyObject *tokens(Tokenizer *t, void *Py_UNUSED(closure)) { return PyLong_FromSize_t(t->n_ids); }

static int init(Tokenizer *t, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"max_length", NULL};
    long long max_length;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "L", names, &max_length)) return -1;
    if (max_length < 1) {
        PyErr_SetString(PyExc_ValueError, "max_length must be positive");
        return -1;
    }
    t->max_length = max_length;
    return 0;
}

static void dealloc(Tokenizer *t)
{
    free(t->arena);
    free(t->word_start);
    free(t->word_len);
    free(t->word_hash);
    free(t->table);
    free(t->ids);
    free(t->lengths);
    free(t->token);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyMethodDef methods[] = {
    {"feed", (PyCFunction)feed, METH_O, "Tokenize the next chunk of bytes of the current stream."},
    {"finish", (PyCFunction)finish, METH_NOARGS, "End the current stream (its last line ends here)."},
    {"words", (PyCFunction)words, METH_NOARGS, "The distinct tokens (bytes), by provisional number."},
    {"ids", (PyCFunction)ids, METH_NOARGS, "The corpus as provisional numbers: int32 bytes."},
    {"lengths", (PyCFunction)lengths, METH_NOARGS, "Tokens per sentence: int64 bytes."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef getset[] = {
    {"tokens", (getter)tokens, NULL, "Tokens read so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject TokenizerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sagetext.algorithms.blazingtext.word2vec.native_engine._native.Tokenizer",
    .tp_doc = PyDoc_STR("Tokenizer(max_length): whitespace tokens and sentences of UTF-8 text, numbered."),
    .tp_basicsize = sizeof(Tokenizer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)init,
    .tp_dealloc = (destructor)dealloc,
    .tp_methods = methods,
    .tp_getset = getset,
};
