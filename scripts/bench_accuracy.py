"""Field accuracy on the labelled real invoices in ../shared/eval.

For every field and modality it prints exact-match accuracy, the share of fields the
pipeline auto-accepted (status ok), the review rate (key fields a person has to look at),
and the silent-error rate: wrong values among the auto-accepted ones. A value where the
label is null (not printed on that invoice: a private buyer's taxpayer ID, the code of a
全电 invoice) is invented: it counts as wrong, and as a silent error when auto-accepted.
A party ID auto-accepted in the other party's field is counted on its own line.
Labels the page itself contradicts are corrected from scripts/label_corrections.json (each
correction printed, with the text it rests on; --raw-labels scores the labels as shipped).
A JSON report goes to bench-results/.

    python scripts/bench_accuracy.py                     # every set; cn PDFs by text layer AND forced OCR
    python scripts/bench_accuracy.py --force-ocr         # only forced OCR (PDFs rendered by the loader)
    python scripts/bench_accuracy.py --engine paddle --sets cn,cn_photos
    python scripts/bench_accuracy.py --ocr-cache /tmp/ocr-cache   # developers: reuse OCR lines
    python scripts/bench_accuracy.py --ocr runtime=onnxruntime --ocr rec_own_width=false  # other OCR settings

Forced OCR renders each PDF through the pipeline's own loader (as `invoices extract
--force-ocr` does), not the pre-rendered PNG beside it, so the rendering path is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.lifeline import process_pool
from pipeline.process import process_document

REPO = Path(__file__).resolve().parents[1]

DEFAULT_EVAL = Path(os.environ.get("INVOICES_EVAL_DIR", REPO.parent / "shared" / "eval"))
LABEL_CORRECTIONS = REPO / "scripts" / "label_corrections.json"

CN_KEY_FIELDS = (
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
CN_OTHER_FIELDS = ("title", "machine_no", "buyer_name", "seller_name", "total_amount_words")
AMOUNT_FIELDS = {"amount_excl_tax", "tax_amount", "total_amount", "total"}
NAME_FIELDS = {"company", "vendor_name", "buyer_name", "seller_name"}
DOC_TYPES = {
    "fully_digital_invoice_general": "fully_digital_general",
    "fully_digital_invoice_special": "fully_digital_special",
    "shenzhen_blockchain_e_invoice": "vat_e_invoice_general",
}


@dataclass
class Case:
    case_id: str
    dataset: str
    path: Path
    modality: str
    expected: dict[str, Any]
    key_fields: tuple[str, ...]
    expected_doc_type: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)  # label name -> our field name
    force_ocr: bool = False  # ignore the PDF's text layer: render the page and OCR it


def norm(name: str, value: Any) -> str | None:
    """Compare after trimming, NFKC and upper case; amounts as decimals to the fen."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if name in AMOUNT_FIELDS:
        try:
            return f"{Decimal(text.replace(',', '').lstrip('¥$RM')):.2f}"
        except InvalidOperation:
            return text
    # Spacing is not information: OCR and labels space names and CJK text differently.
    no_space = name in NAME_FIELDS or re.search(r"[\u4e00-\u9fff]", text)
    text = re.sub(r"\s+", "" if no_space else " ", text)
    return text.upper()


def sroie_date(text: str | None) -> str | None:
    """SROIE labels keep the printed date (Malaysian receipts: day first)."""
    if not text:
        return None
    from pipeline.extract.generic import parse_any_date

    parsed = parse_any_date(text)
    return parsed[0] if parsed else text


def load_cases(
    eval_dir: Path, sets: list[str], pdf_modes: tuple[str, ...], photos_dir: Path | None = None
) -> list[Case]:
    """The labelled cases; ``pdf_modes`` holds "text" (PDF text layers) and/or "ocr" (forced OCR).

    A PDF is read once per mode; an image is read once. Forced OCR always takes the PDF itself,
    never the page image rendered beside it.
    """
    cases: list[Case] = []
    only_ocr = pdf_modes == ("ocr",)
    if "cn" in sets:
        for label_path in sorted((eval_dir / "cn").glob("cn_*.json")):
            label = json.loads(label_path.read_text(encoding="utf-8"))
            files = label["files"]
            if "pdf" not in files:
                modes: tuple[str, ...] = ("image",)
            else:
                modes = pdf_modes
            for mode in modes:
                path = label_path.parent / (files["image"] if mode == "image" else files["pdf"])
                modality = label["modality"]
                if mode == "ocr" and modality.startswith("digital_pdf"):
                    modality = "digital_pdf_forced_ocr"
                suffix = "@ocr" if mode == "ocr" and len(pdf_modes) > 1 else ""
                cases.append(
                    Case(
                        label["id"] + suffix,
                        "cn",
                        path,
                        modality,
                        label["fields"],
                        CN_KEY_FIELDS,
                        DOC_TYPES.get(label["doc_type"], label["doc_type"]),
                        force_ocr=mode == "ocr",
                    )
                )
        for label_path in sorted((eval_dir / "cn" / "negatives").glob("*.json")):
            label = json.loads(label_path.read_text(encoding="utf-8"))
            files = label["files"]
            use_pdf = "pdf" in files
            path = label_path.parent / (files["pdf"] if use_pdf else files["image"])
            cases.append(
                Case(label["id"], "cn_negative", path, "negative", {}, (), "other", force_ocr=only_ocr)
            )
    if "cn_photos" in sets:
        for label_path in sorted((photos_dir or eval_dir / "cn_photos").glob("cn_*.json")):
            label = json.loads(label_path.read_text(encoding="utf-8"))
            cases.append(
                Case(
                    label["id"],
                    "cn_photos",
                    label_path.parent / label["files"]["image"],
                    label.get("level") or "photo",
                    label["fields"],
                    CN_KEY_FIELDS,
                    DOC_TYPES.get(label["doc_type"], label["doc_type"]),
                )
            )
    if "invoice2data" in sets:
        for label_path in sorted((eval_dir / "en" / "invoice2data").glob("*.labels.json")):
            label = json.loads(label_path.read_text(encoding="utf-8"))
            files = label["files"]
            if "pdf" not in files:
                continue  # a text-only fixture (no document to read)
            fields = label["fields"]
            cases.append(
                Case(
                    label["id"],
                    "invoice2data",
                    label_path.parent / files["pdf"],
                    "rendered_pdf_forced_ocr" if only_ocr else "digital_pdf",
                    {
                        k: fields.get(k)
                        for k in ("invoice_number", "issue_date", "total_amount", "vendor_name")
                    },
                    ("invoice_number", "issue_date", "total_amount"),
                    force_ocr=only_ocr,
                )
            )
    if "sroie" in sets:
        for label_path in sorted((eval_dir / "en" / "sroie").glob("sroie_*.labels.json")):
            label = json.loads(label_path.read_text(encoding="utf-8"))
            fields = label["fields"]
            cases.append(
                Case(
                    label["id"],
                    "sroie",
                    label_path.parent / label["files"]["image"],
                    "photo_receipt",
                    {
                        "company": fields["company"],
                        "date": sroie_date(fields["date"]),
                        "total": fields["total"],
                    },
                    ("company", "date", "total"),
                    field_map={"company": "vendor_name", "date": "issue_date", "total": "total_amount"},
                )
            )
    return cases


def apply_corrections(cases: list[Case], path: Path = LABEL_CORRECTIONS) -> list[str]:
    """Correct labels the page contradicts (see the file); one line per correction applied."""
    corrections = json.loads(path.read_text(encoding="utf-8"))["corrections"]
    applied = []
    for case in cases:
        for name, fix in corrections.get(case.case_id.removesuffix("@ocr"), {}).items():
            before = case.expected.get(name)
            case.expected[name] = fix["value"]
            applied.append(f"{case.case_id} {name}: {before!r} -> {fix['value']!r} ({fix['why']})")
    return applied


class CachedEngine:
    """Developer aid: an OCR engine whose answers are kept on disk, keyed by the image bytes.

    The key is the SHA-256 of the (preprocessed) page image and its shape, plus the engine's
    version and settings: a change to rendering or preprocessing misses the cache, a change to
    extraction or validation rules reuses it. Never used unless ``--ocr-cache`` is given.
    """

    def __init__(self, engine: Any, directory: Path, settings_key: str) -> None:
        self.engine = engine
        self.directory = directory
        self.settings_key = settings_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def read_upright(
        self, image: Any, page: int = 0, timings: Any = None, *, photographed: bool = False
    ) -> Any:
        """The engine's upright reading of ``image``: its lines and turn from disk when seen before."""
        import hashlib

        from pipeline.model import OcrPage, TextLine
        from pipeline.preprocess import rotate_quadrant

        digest = hashlib.sha256()
        digest.update(
            f"{image.shape}|{image.dtype}|{self.engine.version()}|{self.settings_key}|{photographed}".encode()
        )
        digest.update(image.tobytes())
        path = self.directory / digest.hexdigest()[:2] / f"{digest.hexdigest()}.json"
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            lines = [
                TextLine(
                    text=line["text"],
                    confidence=line["confidence"],
                    polygon=tuple((x, y) for x, y in line["polygon"]),
                    page=page,
                )
                for line in data["lines"]
            ]
            angle = int(data["angle"])
            return (
                rotate_quadrant(image, angle),
                OcrPage(lines=lines, engine=data["engine"], seconds=0.0),
                angle,
            )
        turned, ocr, angle = self.engine.read_upright(image, page, timings, photographed=photographed)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "engine": ocr.engine,
            "angle": angle,
            "lines": [
                {"text": line.text, "confidence": line.confidence, "polygon": [list(p) for p in line.polygon]}
                for line in ocr.lines
            ],
        }
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        temporary.replace(path)
        return turned, ocr, angle


def use_ocr_cache(directory: Path) -> None:
    """Route this worker's OCR through ``CachedEngine`` (idempotent)."""
    import pipeline.process as process_module
    from pipeline.ocr import get_engine

    if getattr(process_module.get_engine, "cached_in", None) == directory:
        return

    def cached_get_engine(settings: Settings) -> Any:
        key = f"{settings.engine}|{settings.ocr_max_side}|{settings.threads_per_worker}|{settings.ocr_orientation}"
        return CachedEngine(get_engine(settings), directory, key)

    cached_get_engine.cached_in = directory  # type: ignore[attr-defined]
    process_module.get_engine = cached_get_engine  # type: ignore[assignment]


def run_case(case: Case, settings: Settings, ocr_cache: Path | None = None) -> dict[str, Any]:
    if ocr_cache is not None:
        use_ocr_cache(ocr_cache)
    started = time.perf_counter()
    data = case.path.read_bytes()
    if case.force_ocr:
        settings = settings.model_copy(update={"use_text_layer": False})
    try:
        processed = process_document(data, case.path.name, settings)
        result = processed.result.to_dict(include_lines=False)
        error = None
    except InputError as exc:
        result, error = None, f"{type(exc).__name__}: {exc}"
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "case": case.case_id,
        "result": result,
        "error": error,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_kb / 1024,
    }


PARTY_IDS = {"buyer_tax_id": "seller_tax_id", "seller_tax_id": "buyer_tax_id"}
COUNTS = ("n", "right", "accepted", "silent", "invented", "review", "swapped")


def score(cases: list[Case], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Count, per set, field and modality, what a user would see.

    ``invented``: a value where the label is null (wrong; a silent error when auto-accepted).
    ``review``: a field a person has to look at (sent to review, or missing though printed).
    ``swapped``: a party's taxpayer ID auto-accepted in the other party's field.
    """
    stats: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    failures: list[dict[str, Any]] = []
    doc_type_right = 0
    for case in cases:
        run = runs[case.case_id]
        result = run["result"]
        if case.expected_doc_type is not None:
            got = result["doc_type"] if result else None
            doc_type_right += got == case.expected_doc_type
            if got != case.expected_doc_type:
                failures.append(
                    {"case": case.case_id, "field": "doc_type", "got": got, "want": case.expected_doc_type}
                )
        if case.dataset == "cn_negative":
            invented = [n for n, f in (result or {}).get("fields", {}).items() if f.get("value") is not None]
            entry = stats[(case.dataset, "no_invented_fields", case.modality)]
            entry["n"] += 1
            entry["right"] += not invented
            continue
        for name, want in case.expected.items():
            ours = case.field_map.get(name, name)
            found = (result or {}).get("fields", {}).get(ours, {})
            got = found.get("value")
            want_n, got_n = norm(name, want), norm(name, got)
            right = want_n == got_n
            accepted = found.get("status") == "ok" and got is not None
            invented = want_n is None and got_n is not None
            other = PARTY_IDS.get(name)
            swapped = (
                accepted
                and other is not None
                and got_n is not None
                and got_n != want_n
                and got_n == norm(other, case.expected.get(other))
            )
            counts = {
                "n": 1,
                "right": right,
                "accepted": accepted,
                "silent": accepted and not right,
                "invented": invented,
                # Correctly absent (a 全电 code, a private buyer's ID) asks nothing of anyone.
                "review": not accepted and not (want_n is None and got_n is None),
                "swapped": swapped,
            }
            for modality in (case.modality, "all"):
                entry = stats[(case.dataset, name, modality)]
                for key, value in counts.items():
                    entry[key] += int(value)
            if not right:
                failures.append(
                    {
                        "case": case.case_id,
                        "field": name,
                        "got": got,
                        "want": want,
                        "status": found.get("status"),
                        "source": found.get("source"),
                        "reasons": found.get("reasons"),
                        "error": run["error"],
                    }
                )
    table = []
    for (dataset, name, modality), counts in sorted(stats.items()):
        n, accepted = counts["n"], counts["accepted"]
        table.append(
            {
                "dataset": dataset,
                "field": name,
                "modality": modality,
                **counts,
                "accuracy": counts["right"] / n if n else 0.0,
                "auto_accepted": accepted / n if n else 0.0,
                "review_rate": counts["review"] / n if n else 0.0,
                "silent_error_rate": counts["silent"] / accepted if accepted else 0.0,
                "silent_errors": counts["silent"],
            }
        )
    key_summary = {}
    for case_set in {case.dataset for case in cases}:
        keys = next((case.key_fields for case in cases if case.dataset == case_set), ())
        rows = [r for r in table if r["dataset"] == case_set and r["field"] in keys]
        for modality in sorted({r["modality"] for r in rows}):
            chosen = [r for r in rows if r["modality"] == modality]
            total = {key: sum(r[key] for r in chosen) for key in COUNTS}
            n, accepted = total["n"], total["accepted"]
            key_summary[f"{case_set}/{modality}"] = {
                "fields": n,
                "accuracy": total["right"] / n if n else 0.0,
                "auto_accepted": accepted / n if n else 0.0,
                "review_rate": total["review"] / n if n else 0.0,
                "silent_error_rate": total["silent"] / accepted if accepted else 0.0,
                "silent_errors": total["silent"],
                "invented": total["invented"],
                "swapped": total["swapped"],
            }
    with_type = [c for c in cases if c.expected_doc_type is not None]
    return {
        "fields": table,
        "key_fields": key_summary,
        "items": score_items(cases, runs),
        "doc_type_accuracy": doc_type_right / len(with_type) if with_type else None,
        "failures": failures,
    }


def _cents(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value).replace(",", "")).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None


def score_items(cases: list[Case], runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Item lines have no labels here; their amounts and taxes must add up to the labelled totals.

    Per modality: invoices with a labelled amount, how many had items read, and how many of those
    have items whose amounts sum to the labelled amount excl. tax and whose taxes sum to the tax.
    """
    summary: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"invoices": 0, "with_items": 0, "items_add_up": 0, "not_adding_up": []}
    )
    for case in cases:
        want_amount = _cents(case.expected.get("amount_excl_tax"))
        want_tax = _cents(case.expected.get("tax_amount"))
        if case.dataset not in ("cn", "cn_photos") or want_amount is None or want_tax is None:
            continue
        items = ((runs[case.case_id]["result"] or {}).get("items")) or []
        amounts = [_cents(item.get("amount")) for item in items]
        taxes = [_cents(item.get("tax_amount")) for item in items]
        adds_up = (
            bool(items)
            and None not in amounts
            and sum(amounts, Decimal(0)) == want_amount  # type: ignore[arg-type]
            and (None in taxes or sum(taxes, Decimal(0)) == want_tax)  # type: ignore[arg-type]
        )
        for modality in (case.modality, "all"):
            entry = summary[f"{case.dataset}/{modality}"]
            entry["invoices"] += 1
            entry["with_items"] += bool(items)
            entry["items_add_up"] += adds_up
            if not adds_up:
                entry["not_adding_up"].append(case.case_id)
    for entry in summary.values():
        entry["add_up_rate"] = entry["items_add_up"] / entry["invoices"] if entry["invoices"] else 0.0
    return dict(summary)


def print_by_modality(rows: list[dict[str, Any]]) -> None:
    """Per field and per modality, for sets with more than one: exact % / auto-accepted %, and
    the silent errors (wrong values auto-accepted) counted after a "!"."""
    for dataset in sorted({row["dataset"] for row in rows}):
        mine = [row for row in rows if row["dataset"] == dataset and row["modality"] != "all"]
        modalities = sorted({row["modality"] for row in mine})
        if len(modalities) < 2:
            continue
        cells = {(row["field"], row["modality"]): row for row in mine}
        widths = {m: max(13, len(m)) for m in modalities}
        print(f"\n{dataset}: exact / auto-accepted by modality (!n = n silent errors)")
        print(f"{'field':20} " + " ".join(f"{m:>{widths[m]}}" for m in modalities))
        for name in sorted({row["field"] for row in mine}):
            parts = []
            for modality in modalities:
                row = cells.get((name, modality))
                text = "" if row is None else f"{row['accuracy']:.0%} / {row['auto_accepted']:.0%}"
                if row is not None and row["silent_errors"]:
                    text += f" !{row['silent_errors']}"
                parts.append(f"{text:>{widths[modality]}}")
            print(f"{name:20} " + " ".join(parts))


def print_invented(rows: list[dict[str, Any]]) -> None:
    """Values where the label is null, per field: what the pipeline made up."""
    invented = [row for row in rows if row["modality"] == "all" and row["invented"]]
    print("\ninvented values (label null, a value given):", "none" if not invented else "")
    for row in invented:
        print(f"  {row['dataset']:14} {row['field']:20} {row['invented']:>4} (of {row['n']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument(
        "--sets",
        default="cn,cn_photos,invoice2data,sroie",
        help="comma-separated: cn, cn_photos, invoice2data, sroie",
    )
    parser.add_argument("--engine", choices=["onnx", "paddle"], default="onnx")
    parser.add_argument(
        "--pdf-mode",
        choices=["both", "text", "ocr"],
        default="both",
        help="cn PDFs by their text layer, by forced OCR of the page rendered by the loader, or both "
        "(default); invoice2data PDFs follow --force-ocr only",
    )
    parser.add_argument("--force-ocr", action="store_true", help="same as --pdf-mode ocr")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N cases per set (smoke runs)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument(
        "--photos-dir",
        type=Path,
        default=None,
        help="the cn_photos set from another directory, e.g. photos made by "
        "../shared/tools/make_photos.py with another seed (default: EVAL_DIR/cn_photos)",
    )
    parser.add_argument("--show-failures", action="store_true", help="print every wrong field")
    parser.add_argument(
        "--ocr",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an OCR setting other than the default, e.g. runtime=onnxruntime, rec_own_width=false, "
        "det_max_side=1280 (Settings.ocr_NAME; repeatable)",
    )
    parser.add_argument(
        "--raw-labels",
        action="store_true",
        help=f"score the labels as shipped, without the corrections in {LABEL_CORRECTIONS.relative_to(REPO)}",
    )
    parser.add_argument(
        "--ocr-cache",
        type=Path,
        default=None,
        help="developers only: keep OCR lines in DIR, keyed by the page image's SHA-256 and the engine "
        "settings, to iterate on extraction rules without re-running OCR (off by default)",
    )
    args = parser.parse_args(argv)

    if not args.eval_dir.is_dir():
        parser.error(f"no evaluation data at {args.eval_dir}")
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    mode = "ocr" if args.force_ocr else args.pdf_mode
    pdf_modes = {"both": ("text", "ocr"), "text": ("text",), "ocr": ("ocr",)}[mode]
    cases = load_cases(args.eval_dir, sets, pdf_modes, args.photos_dir)
    if args.limit:
        per_set: dict[str, int] = defaultdict(int)
        kept = []
        for case in cases:
            per_set[case.dataset] += 1
            if per_set[case.dataset] <= args.limit:
                kept.append(case)
        cases = kept
    corrections = [] if args.raw_labels else apply_corrections(cases)
    ocr_settings = {}
    for item in args.ocr:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--ocr takes NAME=VALUE, not {item!r}")
        ocr_settings[f"ocr_{name.strip()}"] = value.strip()
    try:
        settings = Settings(engine=args.engine, use_text_layer=True, threads_per_worker=1, **ocr_settings)
    except ValueError as exc:
        parser.error(f"--ocr: {exc}")
    cache = args.ocr_cache.resolve() if args.ocr_cache else None
    started = time.perf_counter()
    runs: dict[str, dict[str, Any]] = {}
    with process_pool(args.workers) as pool:
        futures = {pool.submit(run_case, case, settings, cache): case for case in cases}
        for done, future in enumerate(futures, start=1):
            run = future.result()
            runs[run["case"]] = run
            print(f"\r{done}/{len(cases)} documents", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    wall = time.perf_counter() - started
    report = score(cases, runs)
    pages = sum(len(run["result"]["pages"]) for run in runs.values() if run["result"])
    ocr_pages = sum(
        sum(1 for page in run["result"]["pages"] if page["text_source"] == "ocr")
        for run in runs.values()
        if run["result"]
    )
    report["run"] = {
        "engine": args.engine,
        "ocr_settings": {k: v for k, v in settings.model_dump(mode="json").items() if k.startswith("ocr_")},
        "pdf_mode": mode,
        "ocr_cache": str(cache) if cache else None,
        "documents": len(cases),
        "pages": pages,
        "ocr_pages": ocr_pages,
        "wall_seconds": wall,
        "seconds_per_page_per_worker": sum(run["seconds"] for run in runs.values()) / max(pages, 1),
        "peak_rss_mb_per_worker": max(run["peak_rss_mb"] for run in runs.values()),
        "workers": args.workers,
        "errors": {run["case"]: run["error"] for run in runs.values() if run["error"]},
    }

    report["run"]["label_corrections"] = corrections
    print(f"\nengine={args.engine} pdf_mode={mode} documents={len(cases)} pages={pages}")
    print("OCR settings: " + ", ".join(f"{k}={v}" for k, v in report["run"]["ocr_settings"].items()))
    print(f"label corrections ({LABEL_CORRECTIONS.name}): {len(corrections) or 'none'}")
    for line in corrections:
        print(f"  {line}")
    print("key fields (silent: wrong among auto-accepted, invented values included; swapped: a party ID")
    print("auto-accepted in the other party's field; review: fields a person has to look at)")
    header = f"{'set/modality':36} {'fields':>6} {'exact':>7} {'auto-ok':>8} {'review':>7} {'silent':>7}"
    print(header + f" {'invented':>8} {'swapped':>7}")
    for name, row in sorted(report["key_fields"].items()):
        print(
            f"{name:36} {row['fields']:>6} {row['accuracy']:>7.1%} {row['auto_accepted']:>8.1%} "
            f"{row['review_rate']:>7.1%} {row['silent_error_rate']:>7.2%} {row['invented']:>8} "
            f"{row['swapped']:>7}"
        )
    print(f"\n{'set':14} {'field':20} {'n':>4} {'exact':>7} {'auto-ok':>8} {'review':>7} {'silent':>7}")
    for row in report["fields"]:
        if row["modality"] == "all" or row["dataset"] == "cn_negative":
            print(
                f"{row['dataset']:14} {row['field']:20} {row['n']:>4} {row['accuracy']:>7.1%} "
                f"{row['auto_accepted']:>8.1%} {row['review_rate']:>7.1%} {row['silent_error_rate']:>7.2%}"
            )
    print_invented(report["fields"])
    print_by_modality(report["fields"])
    if report["items"]:
        print(f"\n{'items (no labels: sums)':36} {'invoices':>8} {'read':>6} {'add up':>7}")
        for name, row in sorted(report["items"].items()):
            print(f"{name:36} {row['invoices']:>8} {row['with_items']:>6} {row['add_up_rate']:>7.1%}")
    if report["doc_type_accuracy"] is not None:
        print(f"\ndoc_type accuracy: {report['doc_type_accuracy']:.1%}")
    run_info = report["run"]
    print(
        f"time: {run_info['wall_seconds']:.1f} s wall on {args.workers} workers, "
        f"{run_info['seconds_per_page_per_worker']:.2f} s/page per worker, "
        f"peak RSS {run_info['peak_rss_mb_per_worker']:.0f} MB per worker"
        + (" (OCR cache in use: times are not OCR times)" if cache else "")
    )
    if run_info["errors"]:
        print(f"errors: {run_info['errors']}")
    if args.show_failures:
        for failure in report["failures"]:
            print(json.dumps(failure, ensure_ascii=False))
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = {"both": "", "text": "-text", "ocr": "-force-ocr"}[mode] + "".join(
        f"-{item.replace('=', '-')}" for item in args.ocr
    )
    out = args.out / f"accuracy-{args.engine}{suffix}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
