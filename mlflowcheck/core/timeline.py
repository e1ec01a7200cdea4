"""Where a run's seconds go: phases (the server's start, the imports, each check, the
browser, the model worker) with their start and end, for ``--verbose`` and the JSON report.

Times are wall-clock seconds (``time.time()``), so that the model worker, another process,
can report its phases on the same clock; they are shown relative to the process's start.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


def process_start() -> float:
    """When this process started (Linux: from /proc, to 1/100 s), else now: the timeline's
    zero, so that the interpreter's start and the first imports count too."""
    try:
        import os

        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22, after the command name
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age if 0 <= age < 600 else time.time()
    except (OSError, ValueError, IndexError):
        return time.time()


@dataclass
class Phase:
    name: str
    start: float  # time.time()
    end: float


@dataclass
class Timeline:
    zero: float = field(default_factory=process_start)
    phases: list[Phase] = field(default_factory=list)

    def add(self, name: str, start: float, end: float | None = None) -> None:
        self.phases.append(Phase(name, start, time.time() if end is None else end))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.time()
        try:
            yield
        finally:
            self.add(name, start)

    def relative(self) -> list[dict[str, float | str]]:
        """The phases in order of their start, in seconds since the process started."""
        return [
            {"phase": p.name, "start": round(p.start - self.zero, 3), "end": round(p.end - self.zero, 3)}
            for p in sorted(self.phases, key=lambda p: p.start)
        ]
