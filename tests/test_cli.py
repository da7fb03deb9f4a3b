"""The ``invoices`` command end to end: real OCR on samples/, a real store on disk."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from pipeline import __version__
from pipeline.cli import build_parser, main
from pipeline.store.objects import original_key, page_key, result_key
from tests.conftest import SAMPLES

SAMPLE_INPUTS = sorted(
    path for path in SAMPLES.iterdir() if path.suffix in {".png", ".jpg", ".pdf"} and path.is_file()
)
GOOD_INPUTS = [path for path in SAMPLE_INPUTS if not path.name.startswith("corrupt")]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"ingest", "extract", "show", "query", "status", "models"} <= set(commands)
    for name, sub in commands.items():
        assert sub.description or sub.format_help(), name
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: invoices" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_bad_arguments_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(tmp_path / "nope"), "--store", str(tmp_path / "s")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["show", "abcdef", "--store", str(tmp_path / "s")]) == 5


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """samples/ ingested once with two workers; returns the store and both runs' exit codes."""
    store = tmp_path_factory.mktemp("store")
    first = main(["ingest", str(SAMPLES), "--store", str(store), "--workers", "2", "-q"])
    second = main(["ingest", str(SAMPLES), "--store", str(store), "--workers", "2", "-q"])
    return store, first, second


@pytest.mark.slow
@pytest.mark.xdist_group("samples_store")
def test_ingest_stores_everything_once(ingested: tuple[Path, int, int]) -> None:
    store, first, second = ingested
    assert first == 1, "the corrupt sample must make the exit code say something failed"
    assert second == 1
    db = sqlite3.connect(store / "index.sqlite")
    rows = db.execute("SELECT document_id, source_name, page_count FROM documents").fetchall()
    assert sorted(name for _, name, _ in rows) == sorted(path.name for path in GOOD_INPUTS)
    for document_id, _, page_count in rows:
        assert (store / original_key(document_id)).is_file()
        assert (store / result_key(document_id)).is_file()
        for index in range(page_count):
            assert (store / page_key(document_id, index)).is_file()
    failures = db.execute("SELECT source_name, error_type, message FROM failures").fetchall()
    assert failures == [("corrupt_truncated.jpg", "ImageUnreadable", failures[0][2])]
    assert "truncated" in failures[0][2]
    originals = list(store.glob("documents/*/*/original"))
    assert len(originals) == len(GOOD_INPUTS), "a re-run must not add anything"


@pytest.mark.slow
@pytest.mark.xdist_group("samples_store")
def test_corrupt_file_gives_one_clear_line(
    ingested: tuple[Path, int, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _, _ = ingested
    corrupt = SAMPLES / "corrupt_truncated.jpg"
    code = main(["ingest", str(corrupt), str(SAMPLES / "vat_e_general.pdf"), "--store", str(store)])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {corrupt}: ImageUnreadable: {errors[0].split('ImageUnreadable: ')[1]}"]
    assert re.search(r"already stored\s+1\n", captured.out)
    assert re.search(r"failed\s+1\n", captured.out)


@pytest.mark.slow
@pytest.mark.xdist_group("samples_store")
def test_query_show_and_status(ingested: tuple[Path, int, int], capsys: pytest.CaptureFixture[str]) -> None:
    store, _, _ = ingested
    assert main(["query", "--store", str(store), "--format", "json", "--every-document"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == len(GOOD_INPUTS)
    # without --every-document an invoice held in several files (en_invoice: a PDF and a PNG) is one row
    assert main(["query", "--store", str(store), "--format", "json"]) == 0
    grouped = json.loads(capsys.readouterr().out)
    assert sum(r["documents"] for r in grouped) == len(GOOD_INPUTS)
    assert len(grouped) <= len(records)
    clean = next(r for r in records if r["source_name"] == "vat_special_clean.png")
    assert clean["invoice_number"] == "10631331"
    assert main(["show", clean["document_id"][:10], "--store", str(store), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["schema_version"] == "1.0"
    assert shown["fields"]["total_amount"]["value"] == "48360.72"
    assert main(["status", "--store", str(store)]) == 0
    assert "failed" in capsys.readouterr().out


@pytest.mark.slow
def test_extract_json_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "untouched"
    assert main(["extract", str(SAMPLES / "vat_e_general.pdf"), "--json", "--store", str(store)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["doc_type"] == "vat_e_invoice_general"
    assert result["engine"] == "text_layer"
    assert result["fields"]["invoice_number"]["source"] == "text_layer"
    assert not store.exists()
