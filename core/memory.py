"""Give freed heap memory back to the system.

Loading a long log makes and drops many short-lived objects (a read chunk's lines, parsed
dicts) among the long-lived ones (series, checklist windows). glibc keeps the freed pages in
its heap, so resident memory stays at the loading peak for as long as sfttop runs; a trim after
loading returns them. No-op where there is no glibc (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

_trim: object = None


def _load() -> object:
    global _trim
    if _trim is None:
        _trim = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                fn = libc.malloc_trim
                fn.argtypes = [ctypes.c_size_t]
                fn.restype = ctypes.c_int
                _trim = fn
            except (OSError, AttributeError):
                pass
    return _trim


def trim() -> bool:
    """Collect garbage and return free heap pages to the OS; True when malloc_trim ran."""
    gc.collect()
    fn = _load()
    if not fn:
        return False
    fn(0)  # type: ignore[operator]
    return True
