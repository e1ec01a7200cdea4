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

    Importing scikit-learn, skops and MLflow creates some 400,000 objects the collector tracks,
    and almost no cyclic garbage (about 1,500 objects). While they pile up, the collector's
    full passes over the growing heap ran four times and took 0.2 s of the model worker's
    1.8 s of imports (measured in fresh interpreters; README: Performance). Afterwards
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
