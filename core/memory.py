"""Give freed heap memory back to the system, or, for a one-off load, keep it for reuse.

Loading a long log makes and drops many short-lived objects (a read chunk's lines, parsed
dicts) among the long-lived ones (series, checklist windows). glibc keeps the freed pages in
its heap, so resident memory stays at the loading peak for as long as sfttop runs; a trim after
loading returns them. A report does the opposite (``hold_freed``): it loads and exits, so what
it frees is better kept for its next read than given back and faulted in again. No-op where
there is no glibc (musl, macOS).
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable

_libc: object = None
# mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _lib() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                # The running program's symbols, libc's among them: no library search (which
                # runs ldconfig) on the way to a report.
                _libc = ctypes.CDLL(None)
            except OSError:
                pass
    return _libc or None  # type: ignore[return-value]


def _fn(name: str, *argtypes: type) -> Callable[..., int] | None:
    libc = _lib()
    fn = getattr(libc, name, None) if libc is not None else None
    if fn is None:
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def trim() -> bool:
    """Collect garbage and return free heap pages to the OS; True when malloc_trim ran."""
    gc.collect()
    fn = _fn("malloc_trim", ctypes.c_size_t)
    if not fn:
        return False
    fn(0)
    return True


def hold_freed() -> bool:
    """Keep freed memory in the heap, for a process that loads once and exits (``--report``
    and its helpers); True when glibc took the settings.

    A read chunk is a few MiB: glibc maps a block that big afresh each time and unmaps it when
    it is freed, and each new mapping is paid again in page faults; the chunk's copies in the
    tail and the parser too. Served from the heap, and the heap not trimmed behind them, the
    same pages are reused: reading a 218 MB HF log took 0.32 -> 0.10 s of CPU (``bench/stages.py``)."""
    fn = _fn("mallopt", ctypes.c_int, ctypes.c_int)
    if fn is None:
        return False
    return bool(fn(_M_MMAP_THRESHOLD, 32 << 20)) and bool(fn(_M_TRIM_THRESHOLD, 256 << 20))
