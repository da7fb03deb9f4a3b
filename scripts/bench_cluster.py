"""Cluster overhead (``make bench``): the local process pool vs a Dask LocalCluster, same pages, same run.

    python scripts/bench_cluster.py                 # 12 OCR pages, 2 workers x 1 thread each way
    python scripts/bench_cluster.py --pages 24 --text-layer 24

Both run the same documents through ``pipeline.ingest`` into a fresh directory store: once on the
local pool (``Runner`` with 2 worker processes), once on ``LocalCluster(n_workers=2,
threads_per_worker=1)`` through ``pipeline.cluster.ClusterExecutor`` (originals uploaded to the
store, workers read them by key and write pages and results back, the client indexes). Workers
are started and their OCR engines loaded before the clock starts, in both modes: what is measured
is steady-state throughput; the start-up (workers and engines ready) is printed apart.

Printed per mode: wall seconds, documents/s, this process's CPU seconds (hashing, storing,
indexing; for the cluster also the scheduler and the nannies, which a LocalCluster runs in this
process) and the CPU seconds of the worker processes, read with psutil over every process this one
started, from the clock's start to the last result (user and system, per page, and the busiest
thread of each process: the one running the tasks). ``--threads`` lists every thread's CPU. The
cluster's overhead is given on wall time and on total CPU time (workers + this process); on a
loaded machine the CPU figure is the steadier one. The target: <= 10 %.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # comes with distributed (a dependency of it)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import distributed  # noqa: E402, F401  (imported first: it sets its loggers' levels on import)

from pipeline.config import Settings  # noqa: E402
from pipeline.ingest import Outcome, Runner, State, feed  # noqa: E402
from pipeline.store import open_store  # noqa: E402

SAMPLES = REPO / "samples"
OCR_PAGES = [
    "vat_special_clean.png",
    "vat_e_general_skew.png",
    "vat_general_photo.jpg",
    "vat_special_seal_rot180.jpg",
]
TEXT_PAGES = ["vat_e_general.pdf", "fully_digital_general.pdf", "en_invoice.pdf"]
TARGET_PERCENT = 10.0


def make_inputs(folder: Path, ocr_pages: int, text_pages: int) -> list[Path]:
    """Distinct copies of the samples (a trailing comment or bytes after the image's end: decoders
    ignore it, but each copy has its own content hash, so nothing is skipped as already stored)."""
    folder.mkdir(parents=True)
    paths = []
    for kind, names, count in (("ocr", OCR_PAGES, ocr_pages), ("text", TEXT_PAGES, text_pages)):
        for n in range(count):
            name = names[n % len(names)]
            data = (SAMPLES / name).read_bytes()
            tail = f"\n% copy {n}\n".encode() if name.endswith(".pdf") else f"copy-{kind}-{n}".encode()
            path = folder / f"{kind}-{n:03d}-{name}"
            path.write_bytes(data + tail)
            paths.append(path)
    return paths


def _thread_names() -> dict[int, str]:
    import threading

    return {t.native_id or 0: t.name for t in threading.enumerate()}


def _descendants_cpu() -> dict[int, tuple[float, float, dict[int, float]]]:
    """CPU seconds (user, system, per thread) of every process this one started, by pid: the pool's
    workers, or the cluster's nannies and their workers."""
    times = {}
    for process in psutil.Process().children(recursive=True):
        try:
            with process.oneshot():
                cpu = process.cpu_times()
                threads = {t.id: t.user_time + t.system_time for t in process.threads()}
                times[process.pid] = (cpu.user, cpu.system, threads)
        except psutil.Error:
            continue
    return times


def _cpu_delta(
    before: dict[int, tuple[float, float, dict[int, float]]],
    after: dict[int, tuple[float, float, dict[int, float]]],
) -> tuple[float, float, list[tuple[int, float]], list[float]]:
    """User and system seconds spent by the processes between two samples, and per process the
    thread CPU sorted (the busiest thread is the one running the task)."""
    user = system = 0.0
    per_process = []
    threads_sorted: list[float] = []
    for pid, (u1, s1, threads1) in after.items():
        u0, s0, threads0 = before.get(pid, (0.0, 0.0, {}))
        user += u1 - u0
        system += s1 - s0
        per_process.append((pid, (u1 - u0) + (s1 - s0)))
        deltas = sorted((cpu - threads0.get(tid, 0.0) for tid, cpu in threads1.items()), reverse=True)
        if deltas:
            threads_sorted.append(deltas[0])
    return user, system, per_process, threads_sorted


def run(mode: str, files: list[Path], folder: Path, workers: int) -> dict[str, Any]:
    store_dir = folder / f"store-{mode}"
    settings = Settings(store=str(store_dir), index=store_dir / "index.sqlite", threads_per_worker=1)
    store = open_store(settings.store, settings.index)
    outcomes: list[Outcome] = []
    cluster = None
    try:
        started = time.perf_counter()
        if mode == "cluster":
            from pipeline.cluster import ClusterExecutor

            cluster = ClusterExecutor(f"local:{workers}", settings, store)
            cluster.preload(settings)
            runner = Runner(settings, store, workers, cluster=cluster)
        else:
            runner = Runner(settings, store, workers, isolate=True)
            runner.start(preload_ocr=True)
        startup = time.perf_counter() - started
        before = _descendants_cpu()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            feed(runner, files, outcomes.append)
            # Sampled before the pool's workers stop (their CPU is gone with them).
            after = _descendants_cpu()
            names: dict[int, str] = {}
            if cluster is not None:
                for found in cluster.client.run(_thread_names).values():
                    names.update(found)
        finally:
            runner.close()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if cluster is not None:
            cluster.close()
        store.close()
    failed = [o for o in outcomes if o.state == State.FAILED]
    if failed:
        print(f"  {mode}: {len(failed)} failed, e.g. {failed[0].path}: {failed[0].message}")
    user, system, per_process, busiest = _cpu_delta(before, after)
    threads = []
    for pid, (_, _, threads1) in after.items():
        threads0 = before.get(pid, (0.0, 0.0, {}))[2]
        for tid, seconds in threads1.items():
            delta = seconds - threads0.get(tid, 0.0)
            if delta >= 0.05:
                threads.append((pid, names.get(tid, "native" if tid != pid else "main"), delta))
    return {
        "processes_user": user,
        "processes_system": system,
        "per_process": per_process,
        "threads": threads,
        "busiest_threads": busiest,
        "wall": wall,
        "startup": startup,
        "client_cpu": cpu,
        "worker_cpu": sum(o.cpu_seconds for o in outcomes),
        "documents": len(outcomes),
        "pages": sum(o.pages for o in outcomes),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=12, help="OCR pages (default 12)")
    parser.add_argument("--text-layer", type=int, default=0, help="text-layer PDFs as well (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="workers each way, 1 thread each (default 2)")
    parser.add_argument(
        "--threads", action="store_true", help="also the CPU of each thread of the worker processes"
    )
    args = parser.parse_args(argv)
    show_threads = args.threads
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        files = make_inputs(folder / "in", args.pages, args.text_layer)
        print(
            f"\n== cluster overhead: {args.pages} OCR pages + {args.text_layer} text-layer PDFs, "
            f"{args.workers} workers x 1 thread =="
        )
        results = {mode: run(mode, files, folder, args.workers) for mode in ("local", "cluster")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for mode, label in (("local", "local process pool"), ("cluster", "Dask LocalCluster")):
        r = results[mode]
        pages = max(1, r["pages"])
        processes = r["processes_user"] + r["processes_system"]
        print(
            f"  {label:<20} wall {r['wall']:7.1f} s  {r['documents'] / r['wall']:5.2f} docs/s  "
            f"client CPU {r['client_cpu']:6.1f} s  (start-up, not in these: {r['startup']:.1f} s)"
        )
        print(
            f"  {'':<20} worker processes CPU {processes:7.1f} s (user {r['processes_user']:.1f}, "
            f"system {r['processes_system']:.1f}) = {processes / pages:5.2f} s/page; "
            f"in the tasks {r['worker_cpu'] / pages:5.2f} s/page; "
            f"busiest thread of each process {sum(r['busiest_threads']) / pages:5.2f} s/page"
        )
        print(
            f"  {'':<20} per process: "
            + ", ".join(f"{pid} {seconds:.1f} s" for pid, seconds in sorted(r["per_process"]))
        )
        if show_threads:
            for pid, name, seconds in sorted(r["threads"]):
                print(f"  {'':<22} {pid} {name:<40} {seconds:6.2f} s")
    local, cluster = results["local"], results["cluster"]

    def total(r: dict[str, Any]) -> float:
        return r["processes_user"] + r["processes_system"] + r["client_cpu"]

    wall = 100 * (cluster["wall"] / local["wall"] - 1)
    cpu = 100 * (total(cluster) / total(local) - 1)
    for what, value in (("wall time", wall), ("CPU time", cpu)):
        mark = "ok" if value <= TARGET_PERCENT else "OVER"
        print(f"  cluster overhead on {what:<10} {value:+6.1f} %   target <= {TARGET_PERCENT:g} %: {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
