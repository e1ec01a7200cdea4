"""Process tuning for a fast start: the heavy imports without the cyclic garbage collector."""

from __future__ import annotations

import contextlib
import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def imports_without_gc() -> Iterator[None]:
    """The suite's heavy imports with the cyclic garbage collector paused, their objects frozen.

    Importing scikit-learn, skops and MLflow creates hundreds of thousands of objects the
    collector tracks, and almost no cyclic garbage; while they pile up, the collector's full
    passes over the growing heap take a noticeable part of the imports (docs/performance.md).
    Afterwards
    ``gc.freeze`` moves the imported objects out of later passes, as CPython's documentation
    advises for a heap made once at start-up. A collector that was already off is left off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
