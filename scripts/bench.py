"""Speed and memory benchmarks (``make bench``). Nothing here is asserted: it prints numbers.

    python scripts/bench.py                      # every section
    python scripts/bench.py --only ocr           # some sections
    python scripts/bench.py --engine paddle      # the pipeline on PaddleOCR (bare: PaddleOCR too)
    python scripts/bench.py --pages 41 --photos 114   # every page of the eval sets (slow)

Sections
  ocr    Real invoices from ../shared/eval (``$INVOICES_EVAL_DIR``): the 200-dpi page images of
         cn/ (what --force-ocr reads) and the simulated phone photos of cn_photos/; a subset by
         default (--pages, --photos) so that ``make bench`` stays within a few minutes. In the
         same run, on the same files, each with 2 processes x 1 thread (--workers):
           (a) the bare engine at its defaults (RapidOCR 3.10's own ``RapidOCR()`` pipeline, angle
               classifier off as in the pipeline; PaddleOCR's own predict with --engine paddle),
               models loaded before the clock;
           (b) ``ingest`` of the files into a fresh store (read, load, preprocess, OCR, QR,
               extract, validate, PNG, store), workers started and models loaded before the clock.
         Prints pages/s, the ratio b/a, CPU seconds per page (less dependent than wall time on what
         else the machine runs), peak RSS per worker, worker start-up, and the stage table: CPU
         seconds per page in each stage of (b).
  text   pages/s of born-digital PDFs through their text layer (no OCR), including worker
         start, and peak RSS per worker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.config import Settings
from pipeline.ingest import Outcome, Runner, State, feed, run_batch
from pipeline.lifeline import process_pool
from pipeline.ocr.openvino_runtime import cpu_has_avx512, detector_runtime
from pipeline.process import STAGES
from pipeline.store import open_store

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
DEFAULT_EVAL = Path(os.environ.get("INVOICES_EVAL_DIR", REPO.parent / "shared" / "eval"))


def cpu_model() -> str:
    """The processor's name: numbers from two machines compare only with it beside them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---- (a) the bare engine --------------------------------------------------------------------

_BARE: Any = None


def _bare_engine(engine: str) -> Any:
    """RapidOCR's (or PaddleOCR's) own pipeline at its defaults, one thread."""
    global _BARE
    if _BARE is None:
        if engine == "paddle":
            from pipeline.ocr.paddle import PaddleEngine

            _BARE = PaddleEngine(model_dir=Settings().model_dir, threads=1).recognize
        else:
            from rapidocr import RapidOCR

            ocr = RapidOCR(
                params={
                    "Global.use_cls": False,
                    "Global.log_level": "error",  # not the warm-up's "no text found" warning
                    "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                }
            )
            _BARE = lambda image: ocr(image, use_cls=False)  # noqa: E731
        _BARE(np.full((64, 320, 3), 255, np.uint8))
    return _BARE


def _warm(engine: str) -> float:
    _bare_engine(engine)
    time.sleep(0.5)  # so that every worker takes one warm-up call
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bare_ocr(paths: list[str], engine: str) -> tuple[int, float, int, float]:
    """One worker: decode and OCR each file once. Returns pages, peak RSS MB, pid and CPU seconds."""
    ocr = _bare_engine(engine)
    cpu_started = time.process_time()
    for path in paths:
        ocr(cv2.imread(path))
    return (
        len(paths),
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        os.getpid(),
        time.process_time() - cpu_started,
    )


def bare_round(paths: list[Path], engine: str, workers: int) -> dict[str, Any]:
    chunks = [[str(p) for p in paths[i::workers]] for i in range(workers)]
    with process_pool(workers) as pool:
        list(pool.map(_warm, [engine] * workers))
        started = time.perf_counter()
        results = list(pool.map(_bare_ocr, chunks, [engine] * workers))
        wall = time.perf_counter() - started
    return {
        "pages": len(paths),
        "wall": wall,
        "cpu": sum(r[3] for r in results),
        "peaks": {r[2]: r[1] for r in results},
    }


# ---- (b) ingest -----------------------------------------------------------------------------


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


def ingest_round(paths: list[Path], settings: Settings, workers: int) -> dict[str, Any]:
    """Ingest ``paths`` into a fresh store; workers started and models loaded before the clock."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings.model_copy(update={"store": str(Path(tmp) / "store")})
        store = open_store(settings.store)
        outcomes: list[Outcome] = []
        runner = Runner(settings, store, workers, store_factory=lambda: open_store(settings.store))
        try:
            start_began = time.perf_counter()
            runner.start(preload_ocr=True)
            startup = time.perf_counter() - start_began
            started, parent_started = time.perf_counter(), _self_cpu()
            feed(runner, paths, outcomes.append)
            wall, parent_cpu = time.perf_counter() - started, _self_cpu() - parent_started
        finally:
            runner.close()
            store.close()
    stages: dict[str, float] = defaultdict(float)
    for outcome in outcomes:
        for name, seconds in outcome.stages.items():
            stages[name] += seconds
    worker_cpu = sum(o.cpu_seconds for o in outcomes)
    return {
        "pages": sum(o.pages for o in outcomes),
        "failed": sum(o.state == State.FAILED for o in outcomes),
        "wall": wall,
        "cpu": worker_cpu + parent_cpu,
        "worker_cpu": worker_cpu,
        "parent_cpu": parent_cpu,
        "startup": startup,
        "peaks": _per_worker(outcomes),
        "stages": dict(stages),
        "statuses": {o.path: o.status for o in outcomes},
    }


# ---- the OCR section ------------------------------------------------------------------------


def eval_pages(eval_dir: Path, pages: int, photos: int) -> dict[str, list[Path]]:
    """The 200-dpi page images of cn/ (renders of PDFs and the page rasters), and phone photos.

    Photos are taken evenly over the levels (mild, moderate, harsh) and invoices."""
    cn = []
    for label_path in sorted((eval_dir / "cn").glob("cn_*.json")):
        label = json.loads(label_path.read_text(encoding="utf-8"))
        if "pdf" in label["files"]:  # files.image is the page rendered at 200 dpi
            cn.append(label_path.parent / label["files"]["image"])
    shots = sorted((eval_dir / "cn_photos").glob("cn_*.jpg"))
    step = max(1, len(shots) // max(photos, 1))
    chosen_photos = shots[::step][:photos] if photos else []
    step = max(1, len(cn) // max(pages, 1))
    chosen_pages = cn[::step][:pages] if pages else []
    return {"200-dpi pages": chosen_pages, "photos": chosen_photos}


def _stage_table(runs: dict[str, dict[str, Any]]) -> None:
    names = list(runs)
    seen = {name for run in runs.values() for name in run["stages"]}
    order = [s for s in STAGES if s in seen] + sorted(seen - set(STAGES) - {"store"}) + ["store"]
    print("\nstage table of (b): CPU seconds per page (worker stages; store on the parent's saver threads)")
    print(f"{'stage':18}" + "".join(f"{name:>16}" for name in names))
    for stage in order:
        cells = [runs[n]["stages"].get(stage, 0.0) / max(runs[n]["pages"], 1) for n in names]
        print(f"{stage:18}" + "".join(f"{c:>16.3f}" for c in cells))
    others = []
    for n in names:
        run = runs[n]
        staged = sum(v for k, v in run["stages"].items() if k != "store")
        others.append((run["worker_cpu"] - staged) / max(run["pages"], 1))
    print(f"{'other (worker)':18}" + "".join(f"{c:>16.3f}" for c in others))
    print(
        f"{'parent process':18}"
        + "".join(f"{runs[n]['parent_cpu'] / max(runs[n]['pages'], 1):>16.3f}" for n in names)
    )
    print(f"{'total':18}" + "".join(f"{runs[n]['cpu'] / max(runs[n]['pages'], 1):>16.3f}" for n in names))


def bench_ocr(engine: str, workers: int, eval_dir: Path, pages: int, photos: int) -> None:
    if not eval_dir.is_dir():
        print(f"\n== OCR: skipped, no evaluation data at {eval_dir} ==")
        return
    sets = eval_pages(eval_dir, pages, photos)
    settings = Settings(engine=engine, threads_per_worker=1)
    print(
        f"\n== OCR: {len(sets['200-dpi pages'])} 200-dpi cn pages + {len(sets['photos'])} cn_photos "
        f"(subset: --pages/--photos), engine={engine}, {workers} workers x 1 thread =="
    )
    if engine == "onnx":  # the levers below are the onnx engine's; PaddleOCR keeps its own defaults
        print(
            f"   pipeline OCR settings: det long side {settings.ocr_det_max_side or 'engine default'}, "
            f"rec own width {settings.ocr_rec_own_width}, orientation {settings.ocr_orientation}, "
            f"detector runtime {settings.ocr_runtime} ({detector_runtime(settings.ocr_runtime)} here)"
        )
    bare_name = "PaddleOCR predict()" if engine == "paddle" else "RapidOCR()"
    results: dict[str, dict[str, Any]] = {}
    for name, paths in sets.items():
        if not paths:
            continue
        bare = bare_round(paths, engine, workers)
        ingest = ingest_round(paths, settings, workers)
        results[name] = ingest
        rate_a, rate_b = bare["pages"] / bare["wall"], ingest["pages"] / ingest["wall"]
        print(f"\n-- {name}: {len(paths)} files")
        print(
            f"(a) bare {bare_name:20}: {rate_a:5.2f} pages/s  {bare['cpu'] / bare['pages']:5.2f} CPU s/page  "
            f"peak RSS per worker {_memory(bare['peaks'])}"
        )
        print(
            f"(b) ingest                  : {rate_b:5.2f} pages/s  "
            f"{ingest['cpu'] / max(ingest['pages'], 1):5.2f} CPU s/page  peak RSS per worker "
            f"{_memory(ingest['peaks'])}  ({ingest['pages']} pages, {ingest['failed']} failed)"
        )
        cpu_ratio = (bare["cpu"] / bare["pages"]) / max(ingest["cpu"] / max(ingest["pages"], 1), 1e-9)
        print(
            f"ratio b/a: {rate_b / rate_a:4.2f}x in pages/s, {cpu_ratio:4.2f}x in CPU s/page; "
            f"{workers} idle cores would give (b) {workers * ingest['pages'] / max(ingest['cpu'], 1e-9):4.2f} pages/s; "
            f"worker start-up (models loaded) {ingest['startup']:.1f} s wall"
        )
    if results:
        _stage_table(results)


# ---- the text-layer section -----------------------------------------------------------------


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
        finished: list[float] = []  # when each document was stored
        outcomes = run_batch(
            sorted(inputs.iterdir()),
            settings,
            store,
            workers,
            on_done=lambda _: finished.append(time.perf_counter()),
            store_factory=lambda: open_store(settings.store),
        )
        wall, parent_cpu = time.perf_counter() - started, _self_cpu() - parent_started
        store.close()
        shutil.rmtree(inputs)
    done = sum(o.pages for o in outcomes)
    text_pages = sum(1 for o in outcomes if o.status)
    print(
        f"text-layer PDFs  : {done / wall:6.2f} pages/s  ({done} pages, {text_pages} stored, {wall:.1f} s wall "
        f"incl. worker start; target >= 60)"
    )
    if len(finished) > workers:
        # From the first stored document on, the workers are up: what a long batch or a hot folder sees.
        steady = (len(finished) - 1) / max(finished[-1] - finished[0], 1e-9)
        print(
            f"after start-up   : {steady:6.2f} documents/s (first document stored "
            f"{finished[0] - started:.1f} s after the start)"
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
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--pages", type=int, default=16, help="200-dpi cn pages (0: none)")
    parser.add_argument("--photos", type=int, default=12, help="cn_photos (0: none)")
    parser.add_argument("--copies", type=int, default=40, help="copies of the text-layer sample PDFs")
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.only.split(",")}
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, AVX-512 {'yes' if cpu_has_avx512() else 'no'}; "
        f"python {sys.version.split()[0]}; load {os.getloadavg()[0]:.1f}"
    )
    if "ocr" in sections:
        bench_ocr(args.engine, args.workers, args.eval_dir, args.pages, args.photos)
    if "text" in sections:
        bench_text_layer(args.workers, args.copies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
