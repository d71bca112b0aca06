/* Numpy arrays (any object with the buffer protocol) as C arrays, for sagetext's C extensions:
 * one checked way to take an argument's buffer and give it back.
 *
 * Each extension keeps its arguments in a table of `Array`s, takes them with `get_array` (which
 * names the argument in its TypeError / ValueError) and gives them all back with `release`, on
 * success and on failure alike. Python.h must be included first. */
#ifndef SAGETEXT_BUFFERS_H
#define SAGETEXT_BUFFERS_H

#include <string.h>

typedef struct {
    Py_buffer view;
    int held;
} Array;

/* `obj` as a C-contiguous array of `min_items` or more items of one of the `kinds` (struct
 * format characters) of `itemsize` bytes; writable when asked. */
static inline int get_array(PyObject *obj, Array *a, const char *name, const char *kinds, Py_ssize_t itemsize,
                            int writable, Py_ssize_t min_items)
{
    a->held = 0;
    if (PyObject_GetBuffer(obj, &a->view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    a->held = 1;
    const char *format = a->view.format ? a->view.format : "B";
    while (*format == '<' || *format == '=' || *format == '@') format++;
    if (a->view.itemsize != itemsize || format[0] == '\0' || format[1] != '\0' || strchr(kinds, format[0]) == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: expected an array of %zd-byte items ('%s'), got format '%s'", name,
                     itemsize, kinds, a->view.format ? a->view.format : "B");
        return -1;
    }
    if (a->view.len / itemsize < min_items) {
        PyErr_Format(PyExc_ValueError, "%s: expected at least %zd items, got %zd", name, min_items,
                     a->view.len / itemsize);
        return -1;
    }
    return 0;
}

static inline Py_ssize_t items(const Array *a) { return a->view.len / a->view.itemsize; }

static inline void release(Array *arrays, int n)
{
    for (int i = 0; i < n; i++)
        if (arrays[i].held) PyBuffer_Release(&arrays[i].view);
}

#endif
