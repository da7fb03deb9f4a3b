"""Speed and memory benchmarks (``make bench``). Nothing here is asserted: it prints numbers.

    python scripts/bench.py                    # every section
    python scripts/bench.py --only ocr,text    # some sections
    python scripts/bench.py --engine paddle

Sections
  ocr    pages/s of the bare OCR engine vs the whole ingest pipeline on the same page
         images, both on every core (one process per core), and peak RSS per worker
  text   pages/s of born-digital PDFs through their text layer (no OCR)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2

from pipeline.config import Settings
from pipeline.ingest import run_batch
from pipeline.ocr import get_engine
from pipeline.store import open_store

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


def _bare_ocr(paths: list[str], engine: str) -> tuple[int, float, float]:
    """One worker: OCR each image once, as the engine sees it; returns pages, seconds, peak RSS MB."""
    settings = Settings(engine=engine, threads_per_worker=1)
    ocr = get_engine(settings)
    images = [cv2.imread(path) for path in paths]
    started = time.perf_counter()
    for image in images:
        ocr.recognize(image)
    return (
        len(images),
        time.perf_counter() - started,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


def _warm(engine: str) -> float:
    get_engine(Settings(engine=engine, threads_per_worker=1))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_ocr(engine: str, workers: int, repeat: int) -> None:
    upright = [
        p for p in sorted(SAMPLES.glob("*.png")) + sorted(SAMPLES.glob("*.jpg")) if "rot" not in p.name
    ]
    upright = [p for p in upright if not p.name.startswith("corrupt")]
    pages = [str(p) for p in upright] * repeat
    print(f"\n== OCR: {len(pages)} upright sample pages, engine={engine}, {workers} workers ==")
    chunks = [pages[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(_warm, [engine] * workers))  # model loading is not part of the rate
        started = time.perf_counter()
        results = list(pool.map(_bare_ocr, chunks, [engine] * workers))
        bare_wall = time.perf_counter() - started
    bare_rate = len(pages) / bare_wall
    bare_rss = max(r[2] for r in results)
    print(
        f"bare engine      : {bare_rate:6.2f} pages/s  ({bare_wall:.1f} s wall, peak RSS {bare_rss:.0f} MB/worker)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for n, path in enumerate(pages):
            # Distinct bytes per copy, or the content hash would skip repeats.
            data = Path(path).read_bytes() + f"\n{n}".encode() if path.endswith(".jpg") else None
            target = inputs / f"{n:04d}_{Path(path).name}"
            if data is not None:
                target.write_bytes(data)
            else:
                image = cv2.imread(path)
                image[0, 0] = (n % 256, 255, 255)
                cv2.imwrite(str(target), image)
        settings = Settings(engine=engine, store=str(Path(tmp) / "store"), threads_per_worker=1)
        store = open_store(settings.store)
        started = time.perf_counter()
        outcomes = run_batch(sorted(inputs.iterdir()), settings, store, workers)
        wall = time.perf_counter() - started
        store.close()
    done = sum(o.pages for o in outcomes)
    rate = done / wall
    print(f"ingest pipeline  : {rate:6.2f} pages/s  ({wall:.1f} s wall incl. worker start and model load)")
    print(f"pipeline overhead: {100 * (bare_rate / rate - 1):5.1f} % slower than the bare engine")


def bench_text_layer(workers: int, copies: int) -> None:
    pdfs = sorted(SAMPLES.glob("*.pdf"))
    print(f"\n== text layer: {len(pdfs)} born-digital sample PDFs x {copies} copies, {workers} workers ==")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for n in range(copies):
            for pdf in pdfs:
                (inputs / f"{n:04d}_{pdf.name}").write_bytes(pdf.read_bytes() + f"\n%{n}\n".encode())
        settings = Settings(store=str(Path(tmp) / "store"), threads_per_worker=1)
        store = open_store(settings.store)
        started = time.perf_counter()
        outcomes = run_batch(sorted(inputs.iterdir()), settings, store, workers)
        wall = time.perf_counter() - started
        store.close()
        shutil.rmtree(inputs)
    done = sum(o.pages for o in outcomes)
    text_pages = sum(1 for o in outcomes if o.status)
    print(
        f"text-layer PDFs  : {done / wall:6.2f} pages/s  ({done} pages, {text_pages} stored, {wall:.1f} s wall)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="ocr,text", help="comma-separated sections: ocr, text")
    parser.add_argument("--engine", choices=["onnx", "paddle"], default="onnx")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2, help="copies of the OCR sample pages")
    parser.add_argument("--copies", type=int, default=20, help="copies of the text-layer sample PDFs")
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.only.split(",")}
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    if "ocr" in sections:
        bench_ocr(args.engine, args.workers, args.repeat)
    if "text" in sections:
        bench_text_layer(args.workers, args.copies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
