"""The fast path: the two pieces of a probe point that are plain C work, done in C.

1. Host readings. A probe point reads ``/proc/self/statm`` (``pread``) and ``getrusage``. From
   Python they cost twice what the kernel does: ``os.pread`` makes a bytes object, ``split`` seven
   more and ``int`` parses one; ``resource.getrusage`` builds a 16-field struct to read three.
   ``read(fd, page_size, who)`` makes both calls and parses the line in C, and returns
   ``(rss_bytes, maxrss_bytes, faults)`` (``who`` is ``RUSAGE_THREAD`` or ``RUSAGE_SELF``; faults
   are minor plus major), or None where the descriptor does not read as statm's seven numbers or a
   call fails: the probe then reads as before, in Python, which reopens the file or says what went
   wrong. The figures are the same calls' figures either way. ``readings(fd, page_size, who)``
   returns the probe point's readings dict itself where getrusage's peak is the process's own
   (``{"host_rss": rss, "host_hwm": max(maxrss, rss)}``, as ``HostReader.read`` builds it), and
   ``readings_inherited(...)`` where that peak still counts one the process inherited and cannot
   have moved since ``/proc/self/status`` was last read (``HostReader._inherited``'s common case).
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
#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h> /* PyMemberDef, which Python 3.12 moved into Python.h */
#endif

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
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

/* The host's numbers from statm (on `fd`) and getrusage(`who`): out = {rss bytes, maxrss bytes,
   faults}. 1: read; 0: refused (the descriptor does not read as statm, or a call failed). */
static int host_numbers(long fd, long long page, long who, long long out[3]) {
  char text[128];
  ssize_t length;
  do {
    length = pread((int)fd, text, sizeof text, 0);
  } while (length < 0 && errno == EINTR);
  unsigned long long resident = 0;
  if (length <= 0 || length == (ssize_t)sizeof text || !parse_statm(text, length, &resident)) return 0;
  struct rusage usage;
  if (getrusage((int)who, &usage) != 0) return 0;
  out[0] = (long long)(resident * (unsigned long long)page);
  out[1] = (long long)usage.ru_maxrss * 1024;
  out[2] = (long long)(usage.ru_minflt + usage.ru_majflt);
  return 1;
}

/* The first `count` arguments as long longs; -1 with an error where they are not ints. */
static int long_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t count, const char *usage, long long *out) {
  if (nargs != count) {
    PyErr_SetString(PyExc_TypeError, usage);
    return -1;
  }
  for (Py_ssize_t i = 0; i < count; i++) {
    out[i] = PyLong_AsLongLong(args[i]);
    if (out[i] == -1 && PyErr_Occurred()) return -1;
  }
  return 0;
}

static PyObject *fast_read(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  long long given[3], got[3];
  if (long_args(args, nargs, 3, "read(fd, page_size, who) takes three ints", given) < 0) return NULL;
  if (!host_numbers((long)given[0], given[1], (long)given[2], got)) Py_RETURN_NONE;
  return Py_BuildValue("(LLL)", got[0], got[1], got[2]);
}

/* The probe point's readings where getrusage's peak is the process's own (readings.py): one
   dict, as HostReader.read makes it, for the Python that would build it from read()'s tuple. */
static PyObject *key_rss, *key_hwm;

/* {"host_rss": rss, "host_hwm": hwm}: the readings dict HostReader.read makes. */
static PyObject *readings_dict(long long rss, long long hwm) {
  PyObject *rss_value = PyLong_FromLongLong(rss);
  PyObject *hwm_value = rss_value == NULL ? NULL : PyLong_FromLongLong(hwm);
  PyObject *out = hwm_value == NULL ? NULL : PyDict_New();
  if (out != NULL && (PyDict_SetItem(out, key_rss, rss_value) < 0 || PyDict_SetItem(out, key_hwm, hwm_value) < 0)) {
    Py_CLEAR(out);
  }
  Py_XDECREF(rss_value);
  Py_XDECREF(hwm_value);
  return out;
}

static PyObject *fast_readings(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  long long given[3], got[3];
  if (long_args(args, nargs, 3, "readings(fd, page_size, who) takes three ints", given) < 0) return NULL;
  if (!host_numbers((long)given[0], given[1], (long)given[2], got)) Py_RETURN_NONE;
  /* getrusage adds the current RSS from per-CPU counters that lag statm's by a few dozen pages:
     the peak is at least the RSS just read. */
  return readings_dict(got[0], got[1] > got[0] ? got[1] : got[0]);
}

/* The probe point's readings where getrusage's peak still counts one the process inherited
   (readings.py, HostReader._inherited): readings_inherited(fd, page_size, trusted_above,
   faults_then, hwm_then, rss_then, fault_bytes) -> the dict, where the peak cannot have moved since
   /proc/self/status was last read (its RSS then, plus at most `fault_bytes` a page fault since,
   stays within its peak then); None where getrusage's peak went past the inherited one, or the
   peak may have moved: the caller reads as HostReader.read does. */
static PyObject *fast_readings_inherited(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  long long given[7], got[3];
  if (long_args(args, nargs, 7, "readings_inherited() takes seven ints", given) < 0) return NULL;
  long long trusted_above = given[2], faults_then = given[3], hwm_then = given[4], rss_then = given[5];
  long long fault_bytes = given[6];
  /* the process's faults, not the thread's */
  if (!host_numbers((long)given[0], given[1], RUSAGE_SELF, got)) Py_RETURN_NONE;
  long long rss = got[0], maxrss = got[1], faults = got[2];
  if (maxrss > trusted_above || faults < faults_then || rss_then + (faults - faults_then) * fault_bytes > hwm_then)
    Py_RETURN_NONE;
  return readings_dict(rss, hwm_then > rss ? hwm_then : rss);
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

/* The line template % values into the ring: what write() returns, or -2: a value the C side does
   not format (the caller formats the line in Python and writes it). */
static long long ring_put(Ring *self, PyObject *template, PyObject *values, int urgent) {
  if (self->closed || self->base == NULL) return 0; /* closed, or never initialised */
  if (self->busy) return -1;
  char local[4096];
  Py_ssize_t n = format_line(local, (Py_ssize_t)sizeof local, template, values);
  if (n == -1) return -2; /* a long line: formatted in Python */
  if (n < 0) return n;
  long long end = self->written + n;
  if (end > self->limit) {
    self->limit = read_position(self) + self->capacity;
    if (end > self->limit) return -1;
  }
  copy_in(self, (const unsigned char *)local, n);
  if (urgent || self->written >= self->next_wake) {
    self->next_wake = self->written + self->half;
    return 2;
  }
  return 1;
}

/* write_format(template, values, urgent) -> what write() returns, or -2 (ring_put). */
static PyObject *ring_write_format(Ring *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError, "write_format(template: str, values: tuple, urgent)");
    return NULL;
  }
  int urgent = PyObject_IsTrue(args[2]);
  if (urgent < 0) return NULL;
  return PyLong_FromLongLong(ring_put(self, args[0], args[1], urgent));
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

/* ---- Probe points (runtime.py): a scope's entry and exit in one C call each, where the probe
   point takes the host readings only (torch is not imported), nothing pauses, no sites are
   recorded, the thread's stack is shallow, the exit is not an exception's and the ring has its C
   writer. Every other case goes to the Python methods (Runtime.enter_site, Runtime.exit), which
   take it from the start: C decides before it changes anything. The events, scopes and figures
   are the Python path's, the same bytes (tests/test_fast_path.py).

   The slots of the probe's own classes (scopes.py: ThreadState, Site, Scope) are read and written
   at their offsets, found once from their member descriptors: through the generic attribute
   lookup, the ~45 reads and writes of a probe point cost more in C than Python's specialised
   bytecode does. Each object's type is checked first (exactly these classes, else Python). */

#ifndef Py_T_OBJECT_EX
#define Py_T_OBJECT_EX 16 /* structmember.h's T_OBJECT_EX and READONLY, before Python 3.12 named them */
#endif
#ifndef Py_READONLY
#define Py_READONLY 1
#endif

static PyObject *s_local, *s_state, *s_idle, *s_active, *s_host, *s_quick, *s_send_format, *s_fast_ring,
    *s_finish_format, *s_open_scopes, *s_numbers, *s_pid, *s_env_rank_json, *s_private_name, *s_recursion_set,
    *s_torch, *s_multiprocessing, *s_internal_error, *s_forget, *s_scope_entry, *s_scope_exit, *s_null, *s_zero,
    *empty_peak;

static int intern_names(void) {
#define NAME(var, text) \
  if ((var = PyUnicode_InternFromString(text)) == NULL) return -1;
  NAME(s_local, "local") NAME(s_state, "state") NAME(s_idle, "idle") NAME(s_active, "active") NAME(s_host, "host")
  NAME(s_quick, "quick") NAME(s_send_format, "_send_format") NAME(s_fast_ring, "fast_ring")
  NAME(s_finish_format, "finish_format") NAME(s_open_scopes, "open_scopes") NAME(s_numbers, "_numbers")
  NAME(s_pid, "pid") NAME(s_env_rank_json, "_env_rank_json") NAME(s_private_name, "_name")
  NAME(s_recursion_set, "_recursion_set") NAME(s_torch, "torch") NAME(s_multiprocessing, "multiprocessing")
  NAME(s_internal_error, "internal_error") NAME(s_forget, "_forget") NAME(s_scope_entry, "scope entry")
  NAME(s_scope_exit, "scope exit") NAME(s_null, "null")
#undef NAME
  if ((s_zero = PyLong_FromLong(0)) == NULL || (empty_peak = PyDict_New()) == NULL) return -1;
  return 0;
}

/* From this many open scopes in a thread on, scopes.py raises the recursion limit: Python's job. */
#define RECURSION_HEADROOM_FROM 32

#define SLOT(object, offset) (*(PyObject **)((char *)(object) + (offset)))

/* Whether every one of these slots holds a value. */
static int slots_set(PyObject *object, const Py_ssize_t *offsets, int count) {
  for (int i = 0; i < count; i++)
    if (SLOT(object, offsets[i]) == NULL) return 0;
  return 1;
}

static void slot_set(PyObject *object, Py_ssize_t offset, PyObject *value) {
  PyObject *old = SLOT(object, offset);
  SLOT(object, offset) = Py_NewRef(value);
  Py_XDECREF(old);
}

enum { T_BUSY, T_STACK, T_PLAIN_NAME, T_THREAD, T_NAME, T_NAME_JSON, T_COUNT };
static const char *thread_slots[T_COUNT] = {"busy", "stack", "plain_name", "thread", "name", "name_json"};
enum { S_SITES, S_TARGET_JSON, S_FILE_JSON, S_LINE_JSON, S_CALLS, S_COUNT };
static const char *site_slots[S_COUNT] = {"sites", "target_json", "file_json", "line_json", "calls"};
enum {
  C_SITE, C_NUMBER, C_SCOPE_JSON, C_FIELDS, C_CALL, C_BEFORE, C_START_NS, C_RSS_PEAK, C_OUTERMOST, C_STATE,
  C_DEVICE, C_COUNT
};
static const char *scope_slots[C_COUNT] = {"site",     "number",   "scope_json", "fields",    "call",  "before",
                                           "start_ns", "rss_peak", "outermost",  "state", "device"};

typedef struct {
  PyObject_HEAD
  PyObject *runtime, *scopes, *emitter, *control, *unrecorded, *modules;
  PyTypeObject *thread_type, *site_type, *scope_type;
  PyObject *fields_template, *enter_template, *enter_named_template, *exit_template;
  PyObject *slow_enter, *slow_exit, *json_text, *process_name_json;
  /* What Scopes and Emitter replace only in a fork child (refresh()): */
  PyObject *local, *open_scopes, *numbers, *pid, *rank_json;
  long long scope_pid;
  Py_ssize_t thread_at[T_COUNT], site_at[S_COUNT], scope_at[C_COUNT];
  long long entered, exited, probe_ns; /* scopes opened and closed here, and the time it took */
} Points;

/* Every reference a Points holds, for the collector (traverse) and for clearing it. */
#define POINTS_REFERENCES(X)                                                                              \
  X(runtime) X(scopes) X(emitter) X(control) X(unrecorded) X(modules) X(thread_type) X(site_type)           \
  X(scope_type) X(fields_template) X(enter_template) X(enter_named_template) X(exit_template) X(slow_enter) \
  X(slow_exit) X(json_text) X(process_name_json) X(local) X(open_scopes) X(numbers) X(pid) X(rank_json)

static int points_traverse(Points *self, visitproc visit, void *arg) {
#define VISIT_REFERENCE(field) Py_VISIT(self->field);
  POINTS_REFERENCES(VISIT_REFERENCE)
#undef VISIT_REFERENCE
  return 0;
}

static int points_clear(Points *self) {
#define CLEAR_REFERENCE(field) Py_CLEAR(self->field);
  POINTS_REFERENCES(CLEAR_REFERENCE)
#undef CLEAR_REFERENCE
  return 0;
}

static void points_dealloc(Points *self) {
  PyObject_GC_UnTrack(self);
  points_clear(self);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Where a writable object slot of `type` lives in its instances (its member descriptor). */
static int slot_offsets(PyTypeObject *type, const char *const *names, int count, Py_ssize_t *offsets) {
  for (int i = 0; i < count; i++) {
    PyObject *descriptor = PyObject_GetAttrString((PyObject *)type, names[i]);
    if (descriptor == NULL) return -1;
    int usable = Py_IS_TYPE(descriptor, &PyMemberDescr_Type);
    PyMemberDef *member = usable ? ((PyMemberDescrObject *)descriptor)->d_member : NULL;
    usable = usable && member->type == Py_T_OBJECT_EX && !(member->flags & Py_READONLY);
    if (usable) offsets[i] = member->offset;
    Py_DECREF(descriptor);
    if (!usable) {
      PyErr_Format(PyExc_TypeError, "%s.%s is not a writable slot", type->tp_name, names[i]);
      return -1;
    }
  }
  return 0;
}

/* refresh(): what Scopes and Emitter make anew in a fork child (Runtime.after_fork calls it). */
static PyObject *points_refresh(Points *self, PyObject *unused) {
  (void)unused;
  PyObject *local = PyObject_GetAttr(self->scopes, s_local);
  PyObject *open_scopes = local ? PyObject_GetAttr(self->scopes, s_open_scopes) : NULL;
  PyObject *numbers = open_scopes ? PyObject_GetAttr(self->scopes, s_numbers) : NULL;
  PyObject *scope_pid = numbers ? PyObject_GetAttr(self->scopes, s_pid) : NULL;
  PyObject *pid = scope_pid ? PyObject_GetAttr(self->emitter, s_pid) : NULL;
  PyObject *rank_json = pid ? PyObject_GetAttr(self->emitter, s_env_rank_json) : NULL;
  long long scope_pid_value = scope_pid ? PyLong_AsLongLong(scope_pid) : -1;
  int ok = rank_json != NULL && !PyErr_Occurred();
  if (ok && (!PyDict_CheckExact(open_scopes) || !PyLong_CheckExact(pid) || !PyUnicode_CheckExact(rank_json))) {
    PyErr_SetString(PyExc_TypeError, "Points.refresh: the scopes' open set, the pid or the rank is not as expected");
    ok = 0;
  }
  if (ok) {
    Py_XSETREF(self->local, Py_NewRef(local));
    Py_XSETREF(self->open_scopes, Py_NewRef(open_scopes));
    Py_XSETREF(self->numbers, Py_NewRef(numbers));
    Py_XSETREF(self->pid, Py_NewRef(pid));
    Py_XSETREF(self->rank_json, Py_NewRef(rank_json));
    self->scope_pid = scope_pid_value;
    self->entered = self->exited = self->probe_ns = 0; /* a fork child counts its own */
  }
  Py_XDECREF(local);
  Py_XDECREF(open_scopes);
  Py_XDECREF(numbers);
  Py_XDECREF(scope_pid);
  Py_XDECREF(pid);
  Py_XDECREF(rank_json);
  if (!ok) return NULL;
  Py_RETURN_NONE;
}

static int points_init(Points *self, PyObject *args, PyObject *kwargs) {
  static char *names[] = {"runtime",        "scopes",         "emitter",         "control",
                          "unrecorded",     "modules",        "thread_type",     "site_type",
                          "scope_type",     "fields_template", "enter_template", "enter_named_template",
                          "exit_template",  "slow_enter",     "slow_exit",       "json_text",
                          "process_name_json", NULL};
  PyObject *v[17];
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO!O!O!O!O!UUUUOOOO", names, &v[0], &v[1], &v[2], &v[3],
                                   &PyList_Type, &v[4], &PyDict_Type, &v[5], &PyType_Type, &v[6], &PyType_Type,
                                   &v[7], &PyType_Type, &v[8], &v[9], &v[10], &v[11], &v[12], &v[13], &v[14],
                                   &v[15], &v[16]))
    return -1;
  if (slot_offsets((PyTypeObject *)v[6], thread_slots, T_COUNT, self->thread_at) < 0 ||
      slot_offsets((PyTypeObject *)v[7], site_slots, S_COUNT, self->site_at) < 0 ||
      slot_offsets((PyTypeObject *)v[8], scope_slots, C_COUNT, self->scope_at) < 0)
    return -1;
  PyObject **fields[17] = {&self->runtime,
                           &self->scopes,
                           &self->emitter,
                           &self->control,
                           &self->unrecorded,
                           &self->modules,
                           (PyObject **)&self->thread_type,
                           (PyObject **)&self->site_type,
                           (PyObject **)&self->scope_type,
                           &self->fields_template,
                           &self->enter_template,
                           &self->enter_named_template,
                           &self->exit_template,
                           &self->slow_enter,
                           &self->slow_exit,
                           &self->json_text,
                           &self->process_name_json};
  for (int i = 0; i < 17; i++) Py_XSETREF(*fields[i], Py_NewRef(v[i]));
  PyObject *refreshed = points_refresh(self, NULL);
  if (refreshed == NULL) return -1;
  Py_DECREF(refreshed);
  return 0;
}

static long long clock_ns(clockid_t clock) {
  struct timespec now;
  clock_gettime(clock, &now);
  return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* 1 or 0: the attribute's truth; -1: an error. */
static int attr_true(PyObject *owner, PyObject *name) {
  PyObject *value = PyObject_GetAttr(owner, name);
  if (value == NULL) return -1;
  int truth = PyObject_IsTrue(value);
  Py_DECREF(value);
  return truth;
}

/* The line into the ring as Ring.write_format would; what C does not write, the channel finishes
   (sink.finish_format: a wake-up, a closed ring, no room, a value or length C leaves to Python).
   0, or -1 on an error before the line was written. An error after it (in the wake-up, e.g. at the
   target's recursion limit) is dropped, as Emitter._finish does: the line is out, and the launcher
   reads it at its next look. */
static int send_line(PyObject *sink, Ring *ring, PyObject *template, PyObject *values) {
  long long done = ring_put(ring, template, values, 0);
  if (done == 1) return 0;
  PyObject *code = PyLong_FromLongLong(done);
  if (code == NULL) return -1;
  PyObject *result = PyObject_CallMethodObjArgs(sink, s_finish_format, code, template, values, Py_False, NULL);
  Py_DECREF(code);
  if (result == NULL) {
    if (done < 0 || !PyErr_ExceptionMatches(PyExc_Exception)) return -1;
    PyErr_Clear();
    return 0;
  }
  Py_DECREF(result);
  return 0;
}

/* template % values (dicts as JSON objects) as a str: in C, or what it refuses in protocol.json_text. */
static PyObject *format_text(Points *self, PyObject *template, PyObject *values) {
  char local[4096];
  Py_ssize_t n = format_line(local, (Py_ssize_t)sizeof local, template, values);
  if (n >= 0) return PyUnicode_DecodeUTF8(local, n, NULL);
  return PyObject_CallFunctionObjArgs(self->json_text, template, values, NULL);
}

/* The error being raised, taken out of the thread's error state (normalised, with its
   traceback), and put back. */
static PyObject *take_error(void) {
#if PY_VERSION_HEX >= 0x030C0000
  return PyErr_GetRaisedException();
#else
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  if (value != NULL && traceback != NULL) PyException_SetTraceback(value, traceback);
  Py_XDECREF(type);
  Py_XDECREF(traceback);
  return value;
#endif
}

static void give_error(PyObject *value) {
#if PY_VERSION_HEX >= 0x030C0000
  PyErr_SetRaisedException(value);
#else
  if (value == NULL) return;
  PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(value)), value, PyException_GetTraceback(value));
#endif
}

/* An error of the probe's own becomes an `error` event (Runtime.internal_error), as in Python; an
   interrupt (not an Exception) goes on to the target. 0: reported; -1: raise it. */
static int report_error(Points *self, PyObject *where) {
  if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
  PyObject *value = take_error();
  PyObject *result = PyObject_CallMethodObjArgs(self->runtime, s_internal_error, where, value ? value : Py_None, NULL);
  if (result == NULL) PyErr_Clear();
  Py_XDECREF(result);
  Py_XDECREF(value);
  return 0;
}

/* What both ends check before C takes a probe point: no calls left to close, torch not imported,
   nothing to pause at, no sites to record. 1: C takes it; 0: Python does; -1: an error. */
static int plain_point(Points *self, PyObject *site) {
  if (PyList_GET_SIZE(self->unrecorded) > 0 || SLOT(site, self->site_at[S_SITES]) != Py_False) return 0;
  if (PyDict_GetItemWithError(self->modules, s_torch) != NULL) return 0;
  if (PyErr_Occurred()) return -1;
  return attr_true(self->control, s_idle);
}

/* The ring's sink (the channel) and its C writer: 1 where both are there, 0 where not. */
static int sink_and_ring(Points *self, PyObject **sink, PyObject **ring) {
  *sink = PyObject_GetAttr(self->emitter, s_send_format);
  if (*sink == NULL) return -1;
  if (*sink == Py_None) return 0;
  *ring = PyObject_GetAttr(*sink, s_fast_ring);
  if (*ring == NULL) return -1;
  return PyObject_TypeCheck(*ring, &RingType);
}

/* Whether the probe is active (0: it is not; -1: an error) and, where it is (1), the thread's state
   as a new reference in *state, or NULL where the thread has none yet. */
static int active_state(Points *self, PyObject **state) {
  int active = attr_true(self->emitter, s_active);
  if (active <= 0) return active;
  *state = PyObject_GetAttr(self->local, s_state);
  if (*state != NULL) return 1;
  if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
  PyErr_Clear();
  return 1;
}

/* The host readings (Runtime: `host.quick() or host.reread()`): a new dict, or NULL with no error
   where C leaves them to Python (no quick reading: the descriptor is not statm any more, or the
   peak is not trusted), or NULL with an error. */
static PyObject *host_readings(Points *self) {
  PyObject *host = PyObject_GetAttr(self->runtime, s_host);
  PyObject *quick = host == NULL ? NULL : PyObject_GetAttr(host, s_quick);
  Py_XDECREF(host);
  if (quick == NULL) return NULL;
  PyObject *readings = PyObject_CallNoArgs(quick);
  Py_DECREF(quick);
  if (readings != NULL && (!PyDict_CheckExact(readings) || PyDict_GET_SIZE(readings) == 0)) Py_CLEAR(readings);
  return readings;
}

static PyObject *int_text(long long a, long long b) {
  char text[48];
  int n = snprintf(text, sizeof text, "\"%lld:%lld\"", a, b);
  return PyUnicode_FromStringAndSize(text, n);
}

/* A check's outcome in points_enter and points_exit: 1 goes on in C, 0 hands the probe point to
   Python (nothing changed yet), -1 is an error. */
#define GO_ON_IF(check)           \
  do {                            \
    int outcome_ = (check);       \
    if (outcome_ < 0) goto error; \
    if (outcome_ == 0) {          \
      slow = 1;                   \
      goto done;                  \
    }                             \
  } while (0)

/* enter(site) -> the scope opened, or None (Runtime.enter_site). */
static PyObject *points_enter(Points *self, PyObject *site) {
  PyObject *state = NULL, *stack = NULL, *thread_name = NULL, *sink = NULL, *ring = NULL, *name_json = NULL;
  PyObject *readings = NULL, *number = NULL, *call = NULL, *scope_json = NULL, *depth_value = NULL;
  PyObject *fields_values = NULL, *fields = NULL, *scope = NULL, *ts = NULL, *line_values = NULL, *start = NULL;
  PyObject *result = NULL;
  int busy_set = 0, announced = 0, slow = 0, checked;
  long long started = 0;

  if ((checked = active_state(self, &state)) <= 0) return checked < 0 ? NULL : Py_NewRef(Py_None);
  if (state == NULL) {
    slow = 1; /* the thread's first probe point: Python makes its state */
    goto done;
  }
  if (!Py_IS_TYPE(state, self->thread_type) || !Py_IS_TYPE(site, self->site_type)) {
    slow = 1;
    goto done;
  }
  PyObject *busy = SLOT(state, self->thread_at[T_BUSY]);
  if (busy != Py_False) {
    if (busy == Py_True) result = Py_NewRef(Py_None); /* the probe itself runs on this thread */
    else slow = 1;
    goto done;
  }
  GO_ON_IF(plain_point(self, site));
  stack = Py_XNewRef(SLOT(state, self->thread_at[T_STACK]));
  if (stack == NULL || !PyList_CheckExact(stack) || PyList_GET_SIZE(stack) >= RECURSION_HEADROOM_FROM ||
      SLOT(state, self->thread_at[T_PLAIN_NAME]) != Py_True || !slots_set(state, self->thread_at, T_COUNT) ||
      !slots_set(site, self->site_at, S_COUNT)) {
    slow = 1; /* (a slot never set: Python says what is wrong) */
    goto done;
  }
  /* The thread's name as the Python path reads it, unchanged since (else Python renames it). */
  if ((thread_name = PyObject_GetAttr(SLOT(state, self->thread_at[T_THREAD]), s_private_name)) == NULL) goto error;
  PyObject *known_name = SLOT(state, self->thread_at[T_NAME]);
  GO_ON_IF(thread_name == known_name ? 1 : PyObject_RichCompareBool(thread_name, known_name, Py_EQ));
  GO_ON_IF(sink_and_ring(self, &sink, &ring));

  slot_set(state, self->thread_at[T_BUSY], Py_True); /* from here the probe's own calls open no scopes */
  busy_set = 1;
  started = clock_ns(CLOCK_MONOTONIC);
  PyObject *multiprocessing = PyDict_GetItemWithError(self->modules, s_multiprocessing);
  if (multiprocessing == NULL && PyErr_Occurred()) goto error;
  /* vLLM names its engine process: the name goes on the enter line (runtime.process_name). */
  if (multiprocessing != NULL && (name_json = PyObject_CallNoArgs(self->process_name_json)) == NULL) goto error;
  if ((readings = host_readings(self)) == NULL) {
    if (PyErr_Occurred()) {
      if (!PyErr_ExceptionMatches(PyExc_Exception)) goto error;
      PyErr_Clear();
    }
    slow = 1; /* Python reads them again, its way */
    goto done;
  }
  int outermost = PyDict_GET_SIZE(self->open_scopes) == 0;
  if ((number = PyIter_Next(self->numbers)) == NULL || (call = PyIter_Next(SLOT(site, self->site_at[S_CALLS]))) == NULL) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "a scope counter ended");
    goto error;
  }
  long long number_value = PyLong_AsLongLong(number);
  if ((number_value == -1 && PyErr_Occurred()) || (scope_json = int_text(self->scope_pid, number_value)) == NULL) goto error;
  Py_ssize_t depth = PyList_GET_SIZE(stack);
  PyObject *parent = s_null;
  if (depth > 0) {
    PyObject *inner = PyList_GET_ITEM(stack, depth - 1);
    if (!Py_IS_TYPE(inner, self->scope_type) || (parent = SLOT(inner, self->scope_at[C_SCOPE_JSON])) == NULL) {
      PyErr_SetString(PyExc_TypeError, "a thread's stack holds something other than an open scope");
      goto error;
    }
  }
  if ((depth_value = PyLong_FromSsize_t(depth)) == NULL) goto error;
  /* events.py's scope fields, in order (scopes.SCOPE_FIELDS_TEMPLATE) */
  fields_values = PyTuple_Pack(9, SLOT(site, self->site_at[S_TARGET_JSON]), scope_json, parent, call, depth_value,
                               SLOT(state, self->thread_at[T_NAME_JSON]), readings,
                               SLOT(site, self->site_at[S_FILE_JSON]), SLOT(site, self->site_at[S_LINE_JSON]));
  if (fields_values == NULL || (fields = format_text(self, self->fields_template, fields_values)) == NULL) goto error;
  if ((scope = self->scope_type->tp_alloc(self->scope_type, 0)) == NULL) goto error;
  slot_set(scope, self->scope_at[C_SITE], site);
  slot_set(scope, self->scope_at[C_NUMBER], number);
  slot_set(scope, self->scope_at[C_SCOPE_JSON], scope_json);
  slot_set(scope, self->scope_at[C_FIELDS], fields);
  slot_set(scope, self->scope_at[C_CALL], call);
  slot_set(scope, self->scope_at[C_BEFORE], readings);
  slot_set(scope, self->scope_at[C_RSS_PEAK], s_zero); /* no sample saw it open yet */
  slot_set(scope, self->scope_at[C_OUTERMOST], outermost ? Py_True : Py_False);
  slot_set(scope, self->scope_at[C_STATE], state);
  slot_set(scope, self->scope_at[C_DEVICE], Py_None); /* not a record of the peak tracker */
  /* the enter line (emitter.ENTER, or ENTER_NAMED with the process's name) */
  if ((ts = PyLong_FromLongLong(clock_ns(CLOCK_REALTIME))) == NULL) goto error;
  int named = name_json != NULL && name_json != Py_None;
  line_values = named ? PyTuple_Pack(6, ts, self->pid, self->rank_json, s_null, fields, name_json)
                      : PyTuple_Pack(5, ts, self->pid, self->rank_json, s_null, fields);
  if (line_values == NULL ||
      send_line(sink, (Ring *)ring, named ? self->enter_named_template : self->enter_template, line_values) < 0)
    goto error;
  announced = 1;
  /* open: innermost on the thread's stack, in the process's open set (Scopes.push) */
  if (PyList_Append(stack, scope) < 0 || PyDict_SetItem(self->open_scopes, number, scope) < 0) goto error;
  long long now = clock_ns(CLOCK_MONOTONIC);
  if ((start = PyLong_FromLongLong(now)) == NULL) goto error;
  slot_set(scope, self->scope_at[C_START_NS], start);
  self->probe_ns += now - started;
  self->entered++;
  result = Py_NewRef(scope);
  goto done;

error:
  if (busy_set) {
    PyObject *raised = take_error();
    slot_set(state, self->thread_at[T_BUSY], Py_False);
    busy_set = 0;
    give_error(raised);
  }
  if (announced && SLOT(scope, self->scope_at[C_START_NS]) == NULL) {
    /* announced: the wrapper gets the scope, which needs its start to be closed */
    PyObject *raised = take_error();
    PyObject *start_value = PyLong_FromLongLong(started);
    if (start_value == NULL) PyErr_Clear();
    else slot_set(scope, self->scope_at[C_START_NS], start_value);
    Py_XDECREF(start_value);
    give_error(raised);
  }
  if (report_error(self, s_scope_entry) == 0) result = Py_NewRef(announced ? scope : Py_None);

done:
  if (busy_set) slot_set(state, self->thread_at[T_BUSY], Py_False);
  Py_XDECREF(state);
  Py_XDECREF(stack);
  Py_XDECREF(thread_name);
  Py_XDECREF(sink);
  Py_XDECREF(ring);
  Py_XDECREF(name_json);
  Py_XDECREF(readings);
  Py_XDECREF(number);
  Py_XDECREF(call);
  Py_XDECREF(scope_json);
  Py_XDECREF(depth_value);
  Py_XDECREF(fields_values);
  Py_XDECREF(fields);
  Py_XDECREF(scope);
  Py_XDECREF(ts);
  Py_XDECREF(line_values);
  Py_XDECREF(start);
  if (slow && result == NULL && !PyErr_Occurred()) {
    PyObject *call_args[2] = {self->runtime, site};
    return PyObject_Vectorcall(self->slow_enter, call_args, 2, NULL);
  }
  return result;
}

/* exit(scope, exc) -> None (Runtime.exit): the scope closed, its exit line written. */
static PyObject *points_exit(Points *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "exit(scope, exc) takes two arguments");
    return NULL;
  }
  PyObject *scope = args[0], *exc = args[1];
  PyObject *state = NULL, *stack = NULL, *limit = NULL, *sink = NULL, *ring = NULL, *readings = NULL;
  PyObject *ts = NULL, *duration = NULL, *line_values = NULL, *result = NULL;
  int busy_set = 0, slow = 0, checked;
  long long started = 0;

  if (scope == Py_None) Py_RETURN_NONE;
  if ((checked = active_state(self, &state)) <= 0) return checked < 0 ? NULL : Py_NewRef(Py_None);
  if (state == NULL) Py_RETURN_NONE; /* a thread without scopes (or a fork child, whose states are new) */
  if (!Py_IS_TYPE(state, self->thread_type) || !Py_IS_TYPE(scope, self->scope_type)) {
    slow = 1;
    goto done;
  }
  PyObject *busy = SLOT(state, self->thread_at[T_BUSY]);
  if (busy == Py_True || SLOT(scope, self->scope_at[C_STATE]) != state) {
    result = Py_NewRef(Py_None); /* the probe runs on this thread, or the scope is another thread's */
    goto done;
  }
  PyObject *site = SLOT(scope, self->scope_at[C_SITE]);
  /* An exception (its out-of-memory report, its name), a sampled RSS peak, a peak record of the
   tracker: Python's. */
  if (busy != Py_False || exc != Py_None || site == NULL || !Py_IS_TYPE(site, self->site_type) ||
      SLOT(scope, self->scope_at[C_RSS_PEAK]) != s_zero || SLOT(scope, self->scope_at[C_DEVICE]) != Py_None) {
    slow = 1;
    goto done;
  }
  GO_ON_IF(plain_point(self, site));
  /* a raised recursion limit to lower, or a scope that is not the innermost: Python's */
  if ((limit = PyObject_GetAttr(self->scopes, s_recursion_set)) == NULL) goto error;
  stack = Py_XNewRef(SLOT(state, self->thread_at[T_STACK]));
  Py_ssize_t depth = stack != NULL && PyList_CheckExact(stack) ? PyList_GET_SIZE(stack) : 0;
  if (limit != Py_None || depth == 0 || PyList_GET_ITEM(stack, depth - 1) != scope) {
    slow = 1;
    goto done;
  }
  GO_ON_IF(sink_and_ring(self, &sink, &ring));

  slot_set(state, self->thread_at[T_BUSY], Py_True);
  busy_set = 1;
  started = clock_ns(CLOCK_MONOTONIC);
  if ((readings = host_readings(self)) == NULL) {
    if (PyErr_Occurred()) {
      if (!PyErr_ExceptionMatches(PyExc_Exception)) goto error;
      PyErr_Clear();
    }
    slow = 1;
    goto done;
  }
  /* closed: off the thread's stack and out of the open set (Scopes.close) */
  if (PyList_SetSlice(stack, depth - 1, depth, NULL) < 0) goto error;
  PyObject *number = SLOT(scope, self->scope_at[C_NUMBER]);
  if (number != NULL && PyDict_DelItem(self->open_scopes, number) < 0) {
    if (!PyErr_ExceptionMatches(PyExc_KeyError)) goto error;
    PyErr_Clear();
  }
  PyObject *start = SLOT(scope, self->scope_at[C_START_NS]);
  PyObject *fields = SLOT(scope, self->scope_at[C_FIELDS]);
  long long start_ns = start == NULL ? -1 : PyLong_AsLongLong(start);
  if (start == NULL || fields == NULL || (start_ns == -1 && PyErr_Occurred())) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "a scope without its start or fields");
    goto error;
  }
  if ((ts = PyLong_FromLongLong(clock_ns(CLOCK_REALTIME))) == NULL ||
      (duration = PyLong_FromLongLong(started - start_ns)) == NULL)
    goto error;
  /* emitter.EXIT: ts, pid, rank, device, the scope's fields, after, peak (none: {}), duration, raised */
  line_values = PyTuple_Pack(9, ts, self->pid, self->rank_json, s_null, fields, readings, empty_peak, duration, s_null);
  if (line_values == NULL || send_line(sink, (Ring *)ring, self->exit_template, line_values) < 0) goto error;
  self->probe_ns += clock_ns(CLOCK_MONOTONIC) - started;
  self->exited++;
  result = Py_NewRef(Py_None);
  goto done;

error:
  if (busy_set) {
    /* As Runtime._exit_scope: the scope is closed all the same, and the error reported. */
    PyObject *raised = take_error();
    PyObject *forgot = PyObject_CallMethodObjArgs(self->runtime, s_forget, state, scope, NULL);
    if (forgot == NULL) PyErr_Clear();
    Py_XDECREF(forgot);
    slot_set(state, self->thread_at[T_BUSY], Py_False);
    busy_set = 0;
    give_error(raised);
  }
  if (report_error(self, s_scope_exit) == 0) result = Py_NewRef(Py_None);

done:
  if (busy_set) slot_set(state, self->thread_at[T_BUSY], Py_False);
  Py_XDECREF(state);
  Py_XDECREF(stack);
  Py_XDECREF(limit);
  Py_XDECREF(sink);
  Py_XDECREF(ring);
  Py_XDECREF(readings);
  Py_XDECREF(ts);
  Py_XDECREF(duration);
  Py_XDECREF(line_values);
  if (slow && result == NULL && !PyErr_Occurred()) {
    PyObject *call_args[3] = {self->runtime, scope, exc};
    return PyObject_Vectorcall(self->slow_exit, call_args, 3, NULL);
  }
  return result;
}

static PyObject *points_get_count(Points *self, void *field) {
  return PyLong_FromLongLong(*(long long *)((char *)self + (Py_ssize_t)field));
}

static PyGetSetDef points_fields[] = {
    {"entered", (getter)points_get_count, NULL, "scopes opened in C", (void *)offsetof(Points, entered)},
    {"exited", (getter)points_get_count, NULL, "scopes closed in C", (void *)offsetof(Points, exited)},
    {"probe_ns", (getter)points_get_count, NULL, "the probe's time in them", (void *)offsetof(Points, probe_ns)},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef points_methods[] = {
    {"enter", (PyCFunction)points_enter, METH_O, "enter(site) -> the scope opened, or None (Runtime.enter_site)"},
    {"exit", (PyCFunction)(void (*)(void))points_exit, METH_FASTCALL, "exit(scope, exc) (Runtime.exit)"},
    {"refresh", (PyCFunction)points_refresh, METH_NOARGS, "refresh() after a fork (Runtime.after_fork)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PointsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memlens_fast_path.Points",
    .tp_basicsize = sizeof(Points),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A runtime's probe points, in C where they take the host readings only (runtime.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)points_init,
    .tp_dealloc = (destructor)points_dealloc,
    .tp_traverse = (traverseproc)points_traverse,
    .tp_clear = (inquiry)points_clear,
    .tp_methods = points_methods,
    .tp_getset = points_fields,
};

static PyMethodDef methods[] = {
    {"read", (PyCFunction)(void (*)(void))fast_read, METH_FASTCALL,
     "read(fd, page_size, who) -> (rss_bytes, maxrss_bytes, faults), or None"},
    {"readings", (PyCFunction)(void (*)(void))fast_readings, METH_FASTCALL,
     "readings(fd, page_size, who) -> {'host_rss': rss, 'host_hwm': max(maxrss, rss)}, or None"},
    {"readings_inherited", (PyCFunction)(void (*)(void))fast_readings_inherited, METH_FASTCALL,
     "readings_inherited(fd, page_size, trusted_above, faults_then, hwm_then, rss_then, fault_bytes) -> dict or None"},
    {"format", (PyCFunction)(void (*)(void))fast_format, METH_FASTCALL,
     "format(template, values) -> template % values with dicts as JSON objects, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "memlens_fast_path", NULL, -1, methods};

PyMODINIT_FUNC PyInit_memlens_fast_path(void) {
  if (PyType_Ready(&RingType) < 0 || PyType_Ready(&PointsType) < 0 || intern_names() < 0) return NULL;
  key_rss = PyUnicode_InternFromString("host_rss");
  key_hwm = PyUnicode_InternFromString("host_hwm");
  if (key_rss == NULL || key_hwm == NULL) return NULL;
  PyObject *module = PyModule_Create(&definition);
  if (module == NULL) return NULL;
  Py_INCREF(&RingType);
  Py_INCREF(&PointsType);
  if (PyModule_AddObject(module, "Ring", (PyObject *)&RingType) < 0 ||
      PyModule_AddObject(module, "Points", (PyObject *)&PointsType) < 0 ||
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
