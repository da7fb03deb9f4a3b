#!/usr/bin/env python3
"""OFD and XML e-invoices: field accuracy on the real OFD set, and speed.

Accuracy: every labelled OFD in ``../shared/eval/ofd`` (and the generated golden samples in
``samples_einvoice/``) through the whole pipeline; per field exact match, auto-accepted share and
silent errors (wrong and auto-accepted). The issue's target: 100 % of key fields.

Speed: ``--count`` generated e-invoices (OFD and XML, blue and red-letter, 1-4 items; made by
``scripts/make_einvoice_samples.py`` in a temporary folder) through ``process_document`` on
``--workers`` processes, rendering and PNG encoding included (what ``ingest`` does minus the
store). The machine may be shared, so the rate is given twice: by the wall clock, and from the
CPU seconds each document took (``workers / mean CPU seconds``: what the cores give when the
process has them). The issue's target: >= 50 documents per second on 2 cores.

    python scripts/bench_einvoice.py                 # both, JSON report in bench-results/
    python scripts/bench_einvoice.py --check         # exit 1 when a target is missed
    python scripts/bench_einvoice.py --skip-speed    # accuracy only (for make bench-accuracy)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import unicodedata
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.lifeline import process_pool
from pipeline.process import process_document

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EVAL = Path(os.environ.get("INVOICES_EVAL_DIR", REPO.parent / "shared" / "eval"))
KEY_FIELDS = (
    "invoice_code",
    "invoice_number",
    "issue_date",
    "check_code",
    "buyer_tax_id",
    "seller_tax_id",
    "amount_excl_tax",
    "tax_amount",
    "total_amount",
)
OTHER_FIELDS = ("title", "machine_no", "buyer_name", "seller_name", "total_amount_words")
AMOUNTS = {"amount_excl_tax", "tax_amount", "total_amount"}
RATE_TARGET = 50.0


def norm(name: str, value: Any) -> str | None:
    """As bench_accuracy compares: trimmed, NFKC, upper case; amounts to the fen."""
    if value in (None, ""):
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if name in AMOUNTS:
        try:
            return f"{Decimal(text.replace(',', '').lstrip('¥')):.2f}"
        except InvalidOperation:
            return text
    return text.replace(" ", "").upper()


def cases(eval_dir: Path) -> list[tuple[str, str, Path, dict[str, Any]]]:
    found = []
    for label_path in sorted((eval_dir / "ofd").glob("*.json")):
        label = json.loads(label_path.read_text(encoding="utf-8"))
        found.append(("ofd", label["id"], label_path.parent / label["files"]["ofd"], label["fields"]))
    for truth_path in sorted((REPO / "samples_einvoice").glob("*.expected.json")):
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        found.append(("generated", truth["case"], truth_path.parent / truth["files"][0], truth["fields"]))
    return found


def run_one(path: str, settings: Settings) -> dict[str, Any]:
    data = Path(path).read_bytes()
    cpu = time.process_time()
    try:
        result = process_document(data, Path(path).name, settings).result.to_dict(include_lines=False)
        error = ""
    except Exception as exc:  # a failure is a result of the benchmark, reported, not a crash
        result, error = None, f"{type(exc).__name__}: {exc}"
    return {"path": path, "result": result, "error": error, "cpu": time.process_time() - cpu}


def accuracy(eval_dir: Path, settings: Settings, workers: int) -> dict[str, Any]:
    chosen = cases(eval_dir)
    with process_pool(workers) as pool:
        runs = list(pool.map(run_one, [str(c[2]) for c in chosen], [settings] * len(chosen)))
    table: dict[tuple[str, str], dict[str, int]] = {}
    wrong: list[dict[str, Any]] = []
    for (dataset, case_id, _, labels), run in zip(chosen, runs, strict=True):
        fields = (run["result"] or {}).get("fields", {})
        for name in KEY_FIELDS + OTHER_FIELDS:
            want = norm(name, labels.get(name))
            found = fields.get(name) or {}
            got = norm(name, found.get("value"))
            ok = found.get("status") == "ok"
            row = table.setdefault((dataset, name), {"n": 0, "exact": 0, "auto": 0, "silent": 0})
            row["n"] += 1
            row["exact"] += got == want
            row["auto"] += ok
            row["silent"] += ok and got != want
            if got != want:
                wrong.append(
                    {"case": case_id, "field": name, "want": want, "got": got, "status": found.get("status")}
                )
    key = {
        dataset: {
            "fields": sum(table[(dataset, n)]["n"] for n in KEY_FIELDS),
            "exact": sum(table[(dataset, n)]["exact"] for n in KEY_FIELDS),
            "silent": sum(table[(dataset, n)]["silent"] for n in KEY_FIELDS),
        }
        for dataset in sorted({d for d, _ in table})
    }
    return {
        "key_fields": key,
        "fields": [{"dataset": d, "field": n, **row} for (d, n), row in sorted(table.items())],
        "wrong": wrong,
        "errors": {run["path"]: run["error"] for run in runs if run["error"]},
    }


def speed(count: int, workers: int, settings: Settings, seed: int) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(
        "make_einvoice_samples", REPO / "scripts" / "make_einvoice_samples.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_einvoice_samples", generator)
    spec.loader.exec_module(generator)
    with tempfile.TemporaryDirectory(prefix="bench-einvoice-") as folder:
        generator.main(["--out", folder, "--count", str(count), "--seed", str(seed)])
        paths = sorted(str(p) for p in Path(folder).iterdir() if not p.name.endswith(".json"))
        with process_pool(workers) as pool:
            list(pool.map(run_one, paths[: 2 * workers], [settings] * (2 * workers)))  # start-up, fonts
            started = time.perf_counter()
            runs = list(pool.map(run_one, paths, [settings] * len(paths), chunksize=4))
            wall = time.perf_counter() - started
    cpu = [run["cpu"] for run in runs]
    mean_cpu = sum(cpu) / len(cpu)
    kinds = {suffix: sum(p.endswith(suffix) for p in paths) for suffix in (".ofd", ".xml")}
    return {
        "documents": len(paths),
        "formats": kinds,
        "workers": workers,
        "wall_seconds": round(wall, 3),
        "docs_per_second_wall": round(len(paths) / wall, 1),
        "cpu_ms_per_document": round(1000 * mean_cpu, 1),
        "docs_per_second_cpu": round(workers / mean_cpu, 1),
        "errors": sum(bool(run["error"]) for run in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--count", type=int, default=300, help="generated documents for the speed run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 unless key fields are 100 %% and the rate is met"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    args = parser.parse_args(argv)
    settings = Settings(threads_per_worker=1)
    report: dict[str, Any] = {}
    failed = False
    if not args.skip_accuracy:
        if not (args.eval_dir / "ofd").is_dir():
            parser.error(f"no OFD evaluation set at {args.eval_dir / 'ofd'}")
        report["accuracy"] = acc = accuracy(args.eval_dir, settings, args.workers)
        print(f"{'set':10} {'field':20} {'n':>3} {'exact':>7} {'auto-ok':>8} {'silent':>7}")
        for row in acc["fields"]:
            n = row["n"]
            print(
                f"{row['dataset']:10} {row['field']:20} {n:>3} {row['exact'] / n:>7.1%} "
                f"{row['auto'] / n:>8.1%} {row['silent'] / n:>7.1%}"
            )
        for dataset, row in acc["key_fields"].items():
            share = row["exact"] / max(row["fields"], 1)
            print(
                f"key fields {dataset}: {row['exact']}/{row['fields']} = {share:.1%}, silent errors {row['silent']}"
            )
            failed |= share < 1.0
        for item in acc["wrong"]:
            print(f"  wrong: {item}")
        for path, error in acc["errors"].items():
            print(f"  error: {path}: {error}")
    if not args.skip_speed:
        report["speed"] = run = speed(args.count, args.workers, settings, args.seed)
        print(
            f"\nspeed: {run['documents']} e-invoices {run['formats']} on {run['workers']} workers, rendering included: "
            f"{run['docs_per_second_wall']} docs/s by the wall clock, {run['cpu_ms_per_document']} ms CPU a document "
            f"= {run['docs_per_second_cpu']} docs/s on {run['workers']} cores (target {RATE_TARGET:.0f})"
        )
        failed |= run["docs_per_second_cpu"] < RATE_TARGET or run["errors"] > 0
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "einvoice.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\nreport: {out}")
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
