"""Speed and memory benchmarks (``make bench``). Nothing here is asserted: it prints numbers.

    python scripts/bench.py                    # every section
    python scripts/bench.py --only ocr,text    # some sections
    python scripts/bench.py --engine paddle

Sections
  ocr    pages/s of the bare OCR engine vs the whole ingest pipeline (read, load, preprocess,
         OCR, QR, extract, validate, PNG, store) on the same page images in the same run, both
         on every core (one process per core, models loaded first), in alternating rounds;
         CPU seconds per page of both; peak RSS per worker
  text   pages/s of born-digital PDFs through their text layer (no OCR), including worker
         start, and peak RSS per worker
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
from pipeline.ingest import Outcome, Runner, State, feed, run_batch
from pipeline.ocr import get_engine
from pipeline.store import open_store

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


def _bare_ocr(paths: list[str], engine: str) -> tuple[int, float, float, int, float]:
    """One worker: OCR each image once, as the engine sees it.

    Returns pages, seconds, peak RSS MB, pid and CPU seconds.
    """
    settings = Settings(engine=engine, threads_per_worker=1)
    ocr = get_engine(settings)
    images = [cv2.imread(path) for path in paths]
    started, cpu_started = time.perf_counter(), time.process_time()
    for image in images:
        ocr.recognize(image)
    return (
        len(images),
        time.perf_counter() - started,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        os.getpid(),
        time.process_time() - cpu_started,
    )


def _warm(engine: str) -> float:
    get_engine(Settings(engine=engine, threads_per_worker=1))
    time.sleep(0.5)  # so that every worker takes one warm-up call
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bare_round(pages: list[str], engine: str, workers: int) -> tuple[float, float, dict[int, float]]:
    """Pages per second and CPU seconds per page of the bare engine with ``workers`` processes (models
    loaded before the clock), and the peak RSS of each worker."""
    chunks = [pages[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(_warm, [engine] * workers))
        started = time.perf_counter()
        results = list(pool.map(_bare_ocr, chunks, [engine] * workers))
        wall = time.perf_counter() - started
    cpu = sum(r[4] for r in results)
    return len(pages) / wall, cpu / len(pages), {r[3]: r[2] for r in results}


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _per_worker(outcomes: list[Outcome]) -> dict[int, float]:
    peaks: dict[int, float] = {}
    for outcome in outcomes:
        if outcome.worker:
            peaks[outcome.worker] = max(peaks.get(outcome.worker, 0.0), outcome.worker_peak_mb)
    return peaks


def _memory(peaks: dict[int, float]) -> str:
    return ", ".join(f"{mb:.0f} MB" for _, mb in sorted(peaks.items())) or "-"


def _pipeline_round(
    inputs: Path, engine: str, workers: int, store_dir: Path
) -> tuple[float, float, list[Outcome]]:
    """Wall seconds and parent CPU seconds of ingesting ``inputs`` (models loaded before the clock)."""
    settings = Settings(engine=engine, store=str(store_dir), threads_per_worker=1)
    store = open_store(settings.store)
    outcomes: list[Outcome] = []
    runner = Runner(settings, store, workers, store_factory=lambda: open_store(settings.store))
    try:
        runner.start(preload_ocr=True)
        started, parent_started = time.perf_counter(), _self_cpu()
        feed(runner, sorted(inputs.iterdir()), outcomes.append)
        wall, parent_cpu = time.perf_counter() - started, _self_cpu() - parent_started
    finally:
        runner.close()
        store.close()
    return wall, parent_cpu, outcomes


def bench_ocr(engine: str, workers: int, repeat: int, rounds: int) -> None:
    upright = [
        p for p in sorted(SAMPLES.glob("*.png")) + sorted(SAMPLES.glob("*.jpg")) if "rot" not in p.name
    ]
    upright = [p for p in upright if not p.name.startswith("corrupt")]
    pages = [str(p) for p in upright] * repeat
    print(
        f"\n== OCR: {len(pages)} upright sample pages, engine={engine}, {workers} workers, {rounds} rounds =="
    )
    print("   bare engine and ingest pipeline alternate on the same pages, every core busy in both;")
    print("   models are loaded before each clock starts")
    bare_wall = bare_cpu = pipe_wall = pipe_cpu = 0.0
    pipe_pages = 0
    bare_peaks: dict[int, float] = {}
    pipe_peaks: dict[int, float] = {}
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for n, path in enumerate(pages):
            # Distinct bytes per copy, or the content hash would skip repeats.
            target = inputs / f"{n:04d}_{Path(path).name}"
            if path.endswith(".jpg"):
                target.write_bytes(Path(path).read_bytes() + f"\n{n}".encode())
            else:
                image = cv2.imread(path)
                image[0, 0] = (n % 256, 255, 255)
                cv2.imwrite(str(target), image)
        for round_number in range(1, rounds + 1):
            rate, cpu, peaks = _bare_round(pages, engine, workers)
            bare_wall += len(pages) / rate
            bare_cpu += cpu * len(pages)
            bare_peaks.update(peaks)
            wall, parent_cpu, outcomes = _pipeline_round(
                inputs, engine, workers, Path(tmp) / f"store{round_number}"
            )
            done = sum(o.pages for o in outcomes)
            cpu_used = sum(o.cpu_seconds for o in outcomes) + parent_cpu
            pipe_wall, pipe_cpu, pipe_pages = pipe_wall + wall, pipe_cpu + cpu_used, pipe_pages + done
            pipe_peaks.update(_per_worker(outcomes))
            failed += sum(o.state == State.FAILED for o in outcomes)
            print(
                f"round {round_number}: bare {rate:5.2f} pages/s ({cpu:.2f} CPU s/page), "
                f"pipeline {done / wall:5.2f} pages/s ({cpu_used / max(done, 1):.2f} CPU s/page)"
            )
    bare_pages = len(pages) * rounds
    bare_rate, rate = bare_pages / bare_wall, pipe_pages / pipe_wall
    bare_per_page, pipe_per_page = bare_cpu / bare_pages, pipe_cpu / max(pipe_pages, 1)
    print(f"bare engine      : {bare_rate:6.2f} pages/s  (peak RSS per worker {_memory(bare_peaks)})")
    print(
        f"ingest pipeline  : {rate:6.2f} pages/s  ({pipe_pages} pages, {failed} failed; "
        f"peak RSS per worker {_memory(pipe_peaks)})"
    )
    print(
        f"pipeline overhead: {100 * (bare_rate / rate - 1):5.1f} % slower than the bare engine (target <= 10 %)"
    )
    # CPU time depends far less than wall time on what else the machine runs meanwhile.
    print(
        f"CPU per page     : bare {bare_per_page:.2f} s, pipeline {pipe_per_page:.2f} s (workers and parent): "
        f"{100 * (pipe_per_page / bare_per_page - 1):+.1f} %"
    )


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
        started, parent_started = time.perf_counter(), _self_cpu()
        outcomes = run_batch(
            sorted(inputs.iterdir()),
            settings,
            store,
            workers,
            store_factory=lambda: open_store(settings.store),
        )
        wall, parent_cpu = time.perf_counter() - started, _self_cpu() - parent_started
        store.close()
        shutil.rmtree(inputs)
    done = sum(o.pages for o in outcomes)
    text_pages = sum(1 for o in outcomes if o.status)
    print(
        f"text-layer PDFs  : {done / wall:6.2f} pages/s  ({done} pages, {text_pages} stored, {wall:.1f} s wall "
        f"incl. worker start; target >= 20)"
    )
    cpu = (sum(o.cpu_seconds for o in outcomes) + parent_cpu) / max(done, 1)
    print(
        f"CPU per page     : {1000 * cpu:.0f} ms (workers and parent; {os.cpu_count()} idle cores would "
        f"allow {(os.cpu_count() or 1) / cpu:.0f} pages/s)"
    )
    print(f"peak RSS per worker: {_memory(_per_worker(outcomes))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="ocr,text", help="comma-separated sections: ocr, text")
    parser.add_argument("--engine", choices=["onnx", "paddle"], default="onnx")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2, help="copies of the OCR sample pages")
    parser.add_argument("--rounds", type=int, default=2, help="alternating bare/pipeline rounds (OCR)")
    parser.add_argument("--copies", type=int, default=40, help="copies of the text-layer sample PDFs")
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.only.split(",")}
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    if "ocr" in sections:
        bench_ocr(args.engine, args.workers, args.repeat, args.rounds)
    if "text" in sections:
        bench_text_layer(args.workers, args.copies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
