"""The fast path: the two pieces of a probe point that are plain C work, done in C.

1. Host readings. A probe point reads ``/proc/self/statm`` (``pread``) and ``getrusage``. From
   Python they cost twice what the kernel does: ``os.pread`` makes a bytes object, ``split`` seven
   more and ``int`` parses one; ``resource.getrusage`` builds a 16-field struct to read three.
   ``read(fd, page_size, who)`` makes both calls and parses the line in C, and returns
   ``(rss_bytes, maxrss_bytes, faults)`` (``who`` is ``RUSAGE_THREAD`` or ``RUSAGE_SELF``; faults
   are minor plus major), or None where the descriptor does not read as statm's seven numbers or a
   call fails: the probe then reads as before, in Python, which reopens the file or says what went
   wrong. The figures are the same calls' figures either way.
2. The copy of an event's line into the shared-memory ring (ring.py): ``Ring(address, size,
   header).write(data, urgent)`` does what ``RingWriter.write`` does when there is room, in one
   call, and ``write_format(template, values, urgent)`` formats a probe point's line (a
   ``LineFormat`` template of events.py and its values: ints, JSON text, readings dicts) straight
   into the ring, the same bytes as ``template % values`` with the dicts as JSON objects. The rare
   wait for room stays in Python (``copy_some``), as does everything else a probe point does.

It is optional and never built by the probe in a target: ``python -m memlens_probe build-fast-path``
(or ``build-fast-stats``, which builds it too) compiles it with the C compiler (``$CC``, ``cc``,
``gcc``) against this Python's headers into the cache folder (``$XDG_CACHE_HOME/memlens`` or
``~/.cache/memlens``), named after its source and this Python's ABI
(``memlens_fast_path-<source hash>.cpython-312-x86_64-linux-gnu.so``): a build of other source or
for another Python is never loaded. ``MEMLENS_FAST_PATH=PATH`` names another file,
``MEMLENS_FAST_PATH=off`` turns it off. Each process loads it once (``module()``).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import sysconfig
from typing import Any, Callable, List, Optional, Tuple

from .fast_stats import OFF_VALUES, cache_dir
from .native_build import compile_into

ENV_PATH = "MEMLENS_FAST_PATH"
MODULE = "memlens_fast_path"

C_SOURCE = r"""
/* memlens fast path: the two pieces of a probe point that are plain C work under Python.
   read(): /proc/self/statm's resident pages and getrusage's peak and faults, in one call.
   Ring: the copy of an event's line into the shared-memory ring (ring.py's layout). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifdef Py_GIL_DISABLED
#error "the fast path relies on the GIL (a Ring's writes are not locked): not for a free-threaded Python"
#endif

#ifndef MEMLENS_SOURCE_TAG
#error "build with -DMEMLENS_SOURCE_TAG=\"<tag>\""
#endif

/* statm is "size resident shared text lib data dt\n": seven decimal numbers. Anything else (the
   descriptor is not statm any more) is refused, and the caller reads it the slow way. */
static int parse_statm(const char *text, Py_ssize_t length, unsigned long long *resident) {
  Py_ssize_t at = 0;
  for (int field = 0; field < 7; field++) {
    unsigned long long value = 0;
    Py_ssize_t start = at;
    while (at < length && text[at] >= '0' && text[at] <= '9') {
      if (value > (~0ULL - 9) / 10) return 0;
      value = value * 10 + (unsigned long long)(text[at] - '0');
      at++;
    }
    if (at == start || at >= length) return 0;
    if (field == 1) *resident = value;
    if (text[at] != (field == 6 ? '\n' : ' ')) return 0;
    at++;
  }
  return at == length;
}

static PyObject *fast_read(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "read(fd, page_size, who) takes three arguments");
    return NULL;
  }
  long fd = PyLong_AsLong(args[0]);
  long long page = PyLong_AsLongLong(args[1]);
  long who = PyLong_AsLong(args[2]);
  if (PyErr_Occurred()) return NULL;
  char text[128];
  ssize_t length;
  do {
    length = pread((int)fd, text, sizeof text, 0);
  } while (length < 0 && errno == EINTR);
  unsigned long long resident = 0;
  if (length <= 0 || length == (ssize_t)sizeof text || !parse_statm(text, length, &resident)) Py_RETURN_NONE;
  struct rusage usage;
  if (getrusage((int)who, &usage) != 0) Py_RETURN_NONE;
  return Py_BuildValue("(LLL)", (long long)(resident * (unsigned long long)page), (long long)usage.ru_maxrss * 1024,
                       (long long)(usage.ru_minflt + usage.ru_majflt));
}

/* The writer's end of a ring: `header` bytes (the first 8: the launcher's read position, total
   bytes consumed, little endian), then `capacity` bytes of data. Every call runs with the GIL held
   and never releases it, so no other thread of the process writes at the same time. */
typedef struct {
  PyObject_HEAD
  unsigned char *base;
  unsigned char *data;
  long long capacity, half;
  long long written;   /* bytes ever written */
  long long offset;    /* where the next byte goes in the data area */
  long long limit;     /* writes may go up to here without looking at the read position again */
  long long next_wake; /* ask for a wake once this much is written */
  int closed;          /* unmapped or the launcher is gone: never touch the memory again */
  int busy;            /* a writer waits for room (ring.py, with the GIL released): others wait too */
} Ring;

static long long read_position(const Ring *ring) {
  uint64_t value;
  memcpy(&value, ring->base, sizeof value);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  value = __builtin_bswap64(value);
#endif
  return (long long)value;
}

static void copy_in(Ring *ring, const unsigned char *bytes, long long n) {
  long long first = ring->capacity - ring->offset;
  if (n < first) {
    memcpy(ring->data + ring->offset, bytes, (size_t)n);
    ring->offset += n;
  } else {
    memcpy(ring->data + ring->offset, bytes, (size_t)first);
    memcpy(ring->data, bytes + first, (size_t)(n - first));
    ring->offset = n - first;
  }
  ring->written += n;
}

static int ring_init(Ring *self, PyObject *args, PyObject *kwargs) {
  unsigned long long address;
  long long size, header;
  static char *names[] = {"address", "size", "header", NULL};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "KLL", names, &address, &size, &header)) return -1;
  if (address == 0 || header < 8 || size <= header) {
    PyErr_SetString(PyExc_ValueError, "a ring needs an address and a size past its header");
    return -1;
  }
  self->base = (unsigned char *)(uintptr_t)address;
  self->data = self->base + header;
  self->capacity = size - header;
  self->half = self->capacity >> 1;
  self->written = 0;
  self->offset = 0;
  self->limit = self->capacity;
  self->next_wake = self->half;
  self->closed = 0;
  self->busy = 0;
  return 0;
}

/* write(data, urgent) -> 2 (written; wake the launcher now), 1 (written), 0 (closed), or -1: no
   room, or a writer is waiting for room; the caller takes ring.py's slow path. */
static PyObject *ring_write(Ring *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "write(data, urgent) takes two arguments");
    return NULL;
  }
  if (self->closed || self->base == NULL) return PyLong_FromLong(0); /* closed, or never initialised */
  if (self->busy) return PyLong_FromLong(-1);
  Py_buffer view;
  if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
  int urgent = PyObject_IsTrue(args[1]);
  if (urgent < 0) {
    PyBuffer_Release(&view);
    return NULL;
  }
  long long n = (long long)view.len, end = self->written + n;
  if (end > self->limit) {
    self->limit = read_position(self) + self->capacity;
    if (end > self->limit) {
      PyBuffer_Release(&view);
      return PyLong_FromLong(-1);
    }
  }
  copy_in(self, (const unsigned char *)view.buf, n);
  PyBuffer_Release(&view);
  if (urgent || self->written >= self->next_wake) {
    self->next_wake = self->written + self->half;
    return PyLong_FromLong(2);
  }
  return PyLong_FromLong(1);
}

/* copy_some(data) -> bytes copied from the start of data: as many as there is room for (the
   read position is looked at again first), 0 when there is none or the ring is closed. */
static PyObject *ring_copy_some(Ring *self, PyObject *data) {
  if (self->closed || self->base == NULL) return PyLong_FromLong(0); /* closed, or never initialised */
  Py_buffer view;
  if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
  self->limit = read_position(self) + self->capacity;
  long long room = self->limit - self->written, n = (long long)view.len;
  if (n > room) n = room;
  if (n > 0) copy_in(self, (const unsigned char *)view.buf, n);
  PyBuffer_Release(&view);
  return PyLong_FromLongLong(n > 0 ? n : 0);
}

/* An event's line from a LineFormat template (events.py: JSON text with "%s" where each value
   goes) and its values: exact ints in decimal, str as they are (already JSON, made by the probe),
   dicts of str to exact int as JSON objects (readings). Formatted into `out` (at most `room`
   bytes); returns the length, -1 where it does not fit, -2 for a value of any other kind (the
   caller formats it in Python then). */
static Py_ssize_t put_text(char *out, Py_ssize_t at, Py_ssize_t room, const char *text, Py_ssize_t n) {
  if (at + n > room) return -1;
  memcpy(out + at, text, (size_t)n);
  return at + n;
}

static Py_ssize_t put_int(char *out, Py_ssize_t at, Py_ssize_t room, PyObject *value) {
  int overflow = 0;
  long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
  if (overflow || (number == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    return -2;
  }
  char digits[24];
  char *end = digits + sizeof digits, *at_digit = end;
  unsigned long long magnitude = number < 0 ? 0ULL - (unsigned long long)number : (unsigned long long)number;
  do {
    *--at_digit = (char)('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude);
  if (number < 0) *--at_digit = '-';
  return put_text(out, at, room, at_digit, end - at_digit);
}

static Py_ssize_t put_value(char *out, Py_ssize_t at, Py_ssize_t room, PyObject *value) {
  if (PyLong_CheckExact(value)) return put_int(out, at, room, value);
  if (PyUnicode_CheckExact(value)) {
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(value, &n);
    if (text == NULL) {
      PyErr_Clear();
      return -2;
    }
    return put_text(out, at, room, text, n);
  }
  if (PyDict_CheckExact(value)) {
    Py_ssize_t position = 0;
    PyObject *key, *item;
    at = put_text(out, at, room, "{", 1);
    int first = 1;
    while (at >= 0 && PyDict_Next(value, &position, &key, &item)) {
      if (!PyUnicode_CheckExact(key) || !PyLong_CheckExact(item)) return -2;
      Py_ssize_t n;
      const char *name = PyUnicode_AsUTF8AndSize(key, &n);
      if (name == NULL) {
        PyErr_Clear();
        return -2;
      }
      for (Py_ssize_t i = 0; i < n; i++) /* reading names are identifiers: nothing to escape */
        if (name[i] == '"' || name[i] == '\\' || (unsigned char)name[i] < 0x20) return -2;
      if (!first) at = put_text(out, at, room, ",", 1);
      first = 0;
      if (at >= 0) at = put_text(out, at, room, "\"", 1);
      if (at >= 0) at = put_text(out, at, room, name, n);
      if (at >= 0) at = put_text(out, at, room, "\":", 2);
      if (at >= 0) at = put_int(out, at, room, item);
    }
    return at < 0 ? at : put_text(out, at, room, "}", 1);
  }
  return -2;
}

static Py_ssize_t format_line(char *out, Py_ssize_t room, PyObject *template, PyObject *values) {
  Py_ssize_t length;
  const char *text = PyUnicode_AsUTF8AndSize(template, &length);
  if (text == NULL) {
    PyErr_Clear();
    return -2;
  }
  Py_ssize_t count = PyTuple_GET_SIZE(values), used = 0, at = 0, start = 0;
  const char *percent;
  while ((percent = memchr(text + start, '%', (size_t)(length - start))) != NULL) {
    Py_ssize_t i = percent - text;
    if (i + 1 >= length || text[i + 1] != 's' || used == count) return -2; /* only "%s", one per value */
    at = put_text(out, at, room, text + start, i - start);
    if (at >= 0) at = put_value(out, at, room, PyTuple_GET_ITEM(values, used));
    if (at < 0) return at;
    used++;
    start = i + 2;
  }
  if (used != count) return -2;
  return put_text(out, at, room, text + start, length - start);
}

/* write_format(template, values, urgent) -> what write() returns, or -2: a value the C side does
   not format (the caller formats the line in Python and writes it). */
static PyObject *ring_write_format(Ring *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError, "write_format(template: str, values: tuple, urgent)");
    return NULL;
  }
  if (self->closed || self->base == NULL) return PyLong_FromLong(0); /* closed, or never initialised */
  if (self->busy) return PyLong_FromLong(-1);
  int urgent = PyObject_IsTrue(args[2]);
  if (urgent < 0) return NULL;
  char local[4096];
  Py_ssize_t n = format_line(local, (Py_ssize_t)sizeof local, args[0], args[1]);
  if (n == -1) return PyLong_FromLong(-2); /* a long line: formatted in Python */
  if (n < 0) return PyLong_FromLong(n);
  long long end = self->written + n;
  if (end > self->limit) {
    self->limit = read_position(self) + self->capacity;
    if (end > self->limit) return PyLong_FromLong(-1);
  }
  copy_in(self, (const unsigned char *)local, n);
  if (urgent || self->written >= self->next_wake) {
    self->next_wake = self->written + self->half;
    return PyLong_FromLong(2);
  }
  return PyLong_FromLong(1);
}

/* format(template, values) -> the str template % values (dicts as JSON objects), or None for
   what format_line refuses (the caller formats it in Python). */
static PyObject *fast_format(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError, "format(template: str, values: tuple)");
    return NULL;
  }
  char local[4096];
  Py_ssize_t n = format_line(local, (Py_ssize_t)sizeof local, args[0], args[1]);
  if (n < 0) Py_RETURN_NONE;
  return PyUnicode_DecodeUTF8(local, n, NULL);
}

static PyObject *ring_get_int(Ring *self, void *field) {
  return PyLong_FromLongLong(*(long long *)((char *)self + (Py_ssize_t)field));
}

static PyObject *ring_get_flag(Ring *self, void *field) {
  return PyBool_FromLong(*(int *)((char *)self + (Py_ssize_t)field));
}

static int ring_set_flag(Ring *self, PyObject *value, void *field) {
  int *flag = (int *)((char *)self + (Py_ssize_t)field);
  if (value == NULL) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete a ring's flag");
    return -1;
  }
  int truth = PyObject_IsTrue(value);
  if (truth < 0) return -1;
  if (flag == &self->closed && !truth && self->closed) {
    PyErr_SetString(PyExc_ValueError, "a closed ring stays closed");
    return -1;
  }
  *flag = truth;
  return 0;
}

static int ring_set_next_wake(Ring *self, PyObject *value, void *field) {
  (void)field;
  if (value == NULL) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete next_wake");
    return -1;
  }
  long long wanted = PyLong_AsLongLong(value);
  if (wanted == -1 && PyErr_Occurred()) return -1;
  self->next_wake = wanted;
  return 0;
}

static PyGetSetDef ring_fields[] = {
    {"written", (getter)ring_get_int, NULL, "bytes ever written", (void *)offsetof(Ring, written)},
    {"offset", (getter)ring_get_int, NULL, "where the next byte goes", (void *)offsetof(Ring, offset)},
    {"half", (getter)ring_get_int, NULL, "half the data area", (void *)offsetof(Ring, half)},
    {"next_wake", (getter)ring_get_int, (setter)ring_set_next_wake, "wake at", (void *)offsetof(Ring, next_wake)},
    {"closed", (getter)ring_get_flag, (setter)ring_set_flag, "never written again", (void *)offsetof(Ring, closed)},
    {"busy", (getter)ring_get_flag, (setter)ring_set_flag, "a writer waits for room", (void *)offsetof(Ring, busy)},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef ring_methods[] = {
    {"write", (PyCFunction)(void (*)(void))ring_write, METH_FASTCALL, "write(data, urgent) -> 2, 1, 0 or -1"},
    {"copy_some", (PyCFunction)ring_copy_some, METH_O, "copy_some(data) -> bytes copied"},
    {"write_format", (PyCFunction)(void (*)(void))ring_write_format, METH_FASTCALL,
     "write_format(template, values, urgent) -> 2, 1, 0, -1 or -2"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memlens_fast_path.Ring",
    .tp_basicsize = sizeof(Ring),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The writer's end of an event ring mapped at an address (ring.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ring_init,
    .tp_methods = ring_methods,
    .tp_getset = ring_fields,
};

static PyMethodDef methods[] = {
    {"read", (PyCFunction)(void (*)(void))fast_read, METH_FASTCALL,
     "read(fd, page_size, who) -> (rss_bytes, maxrss_bytes, faults), or None"},
    {"format", (PyCFunction)(void (*)(void))fast_format, METH_FASTCALL,
     "format(template, values) -> template % values with dicts as JSON objects, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "memlens_fast_path", NULL, -1, methods};

PyMODINIT_FUNC PyInit_memlens_fast_path(void) {
  if (PyType_Ready(&RingType) < 0) return NULL;
  PyObject *module = PyModule_Create(&definition);
  if (module == NULL) return NULL;
  Py_INCREF(&RingType);
  if (PyModule_AddObject(module, "Ring", (PyObject *)&RingType) < 0 ||
      PyModule_AddStringConstant(module, "SOURCE_TAG", MEMLENS_SOURCE_TAG) < 0) {
    Py_DECREF(&RingType);
    Py_DECREF(module);
    return NULL;
  }
  return module;
}
"""

# Names the build: a change of the source (or of Python's ABI, in the suffix) is another file.
SOURCE_TAG = hashlib.sha256(C_SOURCE.encode("utf-8")).hexdigest()[:12]

FastRead = Callable[[int, int, int], Optional[Tuple[int, int, int]]]


def file_name() -> str:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or importlib.machinery.EXTENSION_SUFFIXES[0]
    return f"{MODULE}-{SOURCE_TAG}{suffix}"


def library_path() -> Optional[str]:
    """Where the reader for this Python is looked for; None when ``MEMLENS_FAST_PATH`` turns it off."""
    named = os.environ.get(ENV_PATH, "").strip()
    if named.lower() in OFF_VALUES:
        return None
    return named or os.path.join(cache_dir(), file_name())


def load(path: Optional[str] = None) -> Tuple[Optional[Any], str]:
    """The fast path's module, or None and why not (a sentence)."""
    if path is None:
        path = library_path()
    if path is None:
        return None, f"{ENV_PATH} turns it off"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None, "this Python is free-threaded, and the fast path relies on the GIL"
    if not os.path.isfile(path):
        return None, f"no fast path at {path} (the probe's build-fast-path command builds it)"
    try:
        loader = importlib.machinery.ExtensionFileLoader(MODULE, path)
        spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
        if spec is None:
            return None, f"{path} is not an extension module"
        module: Any = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except (ImportError, OSError) as exc:
        return None, f"{path} could not be loaded: {exc}"
    built_from = getattr(module, "SOURCE_TAG", None)
    if built_from != SOURCE_TAG:
        return None, f"{path} was built from other source ({built_from}, this probe's is {SOURCE_TAG})"
    return module, f"the fast path {path}"


_loaded: Optional[Tuple[Optional[Any], str, str]] = None


def module() -> Tuple[Optional[Any], str, str]:
    """This process's fast path, loaded at the first call: (module or None, why, its path)."""
    global _loaded
    if _loaded is None:
        path = ""
        try:
            path = library_path() or ""
            found, why = load(path or None)
        except Exception as exc:  # a broken build never stops the probe: it works in Python
            found, why = None, f"the fast path could not be loaded: {type(exc).__name__}: {exc}"
        _loaded = (found, why, path)
    return _loaded


def compile_command(source: str, target: str, cc: str) -> List[str]:
    include = sysconfig.get_paths()["include"]
    if not os.path.isfile(os.path.join(include, "Python.h")):
        raise RuntimeError(f"no Python.h in {include}: install this Python's headers (e.g. python3-dev)")
    return [
        cc,
        "-O2",
        "-Wall",
        "-shared",
        "-fPIC",
        f'-DMEMLENS_SOURCE_TAG="{SOURCE_TAG}"',
        "-I" + include,
        source,
        "-o",
        target,
    ]


def build(out_dir: Optional[str] = None, cc: Optional[str] = None, quiet: bool = False) -> str:
    """Compile the fast path for this Python; returns its path."""
    target = os.path.join(out_dir or cache_dir(), file_name())
    compiler = cc or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or "cc"
    try:
        return compile_into(
            C_SOURCE,
            "memlens_fast_path.c",
            target,
            lambda source, built: compile_command(source, built, compiler),
            compiler,
            quiet,
        )
    except RuntimeError as exc:
        if str(exc).startswith("cannot run the compiler"):
            raise RuntimeError(f"{exc} (set CC or pass --cc)") from exc
        raise


def main(argv: List[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="memlens_probe build-fast-path",
        description="Build the optional fast path of the probe (a C extension) for this Python.",
    )
    parser.add_argument("--out", help="folder for the module (default: the cache folder the probe looks in)")
    parser.add_argument("--cc", help="C compiler (default: $CC, cc, gcc)")
    args = parser.parse_args(argv)
    try:
        path = build(args.out, args.cc)
    except (OSError, RuntimeError) as exc:
        sys.stderr.write(f"memlens_probe build-fast-path: {exc}\n")
        return 1
    sys.stdout.write(path + "\n")
    return 0
