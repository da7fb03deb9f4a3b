"""Writing: each document's files and its <case>.expected.json, the committed sample set and random sets."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from samplegen.cases import SAMPLE_CASES, Doc, build_random, case_seed

ROOT = Path(__file__).resolve().parents[2]  # the repo (scripts/samplegen/writing.py)
SAMPLES_DIR = ROOT / "samples"
DEFAULT_SEED = 20240611


def write_doc(doc: Doc, out_dir: Path, seed: int) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in doc.files.items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    expected = out_dir / f"{doc.case}.expected.json"
    if doc.truth:
        record = {
            "case": doc.case,
            "doc_type": doc.doc_type,
            "variant": doc.variant,
            "files": sorted(doc.files),
            **doc.truth,
            "degradations": doc.degradations,
            "image": doc.image,
            "generator": {"script": "scripts/make_samples.py", "seed": seed},
        }
        expected.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        written.append(expected)
    elif expected.exists():
        expected.unlink()
    return written


def generate_samples(out_dir: Path, seed: int, cases: Sequence[str] | None = None) -> list[Path]:
    written: list[Path] = []
    for case, builder in SAMPLE_CASES.items():
        if cases and case not in cases:
            continue
        s = case_seed(seed, case)
        doc = builder(case, random.Random(s), np.random.default_rng(s))
        written += write_doc(doc, out_dir, seed)
    return written


def generate_random(out_dir: Path, count: int, seed: int, allow_pdf: bool, prefix: str = "inv") -> list[Path]:
    written: list[Path] = []
    for i in range(count):
        case = f"{prefix}_{i:05d}"
        s = case_seed(seed, case)
        doc = build_random(case, random.Random(s), np.random.default_rng(s), allow_pdf)
        written += write_doc(doc, out_dir, seed)
    return written
