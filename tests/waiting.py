"""``wait_for``: poll a condition until it holds, or fail with what was awaited and the tails of the logs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path


def wait_for(condition: Callable[[], bool], timeout: float, what: str, logs: Sequence[Path] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tails = "\n".join(
                f"--- {log.name}:\n{log.read_text(errors='replace')[-2000:]}" for log in logs if log.exists()
            )
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tails}")
        time.sleep(0.05)
