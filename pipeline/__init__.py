"""Invoice pipeline: load -> preprocess -> OCR -> extract -> validate -> store."""

from __future__ import annotations

__version__ = "0.1.0"
