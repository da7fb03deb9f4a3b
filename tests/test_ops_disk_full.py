"""A full disk during ingest: the file fails with a clear reason, nothing half-written is indexed, and a
re-run completes. The store lives on a small tmpfs the test mounts (root only) and fills for real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.bad_inputs import distinct_pdf


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Take all the space but about ``leave`` bytes."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_fails_the_file_clearly_and_a_rerun_completes(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, index = small_disk / "store", tmp_path / "index.sqlite"
    inputs = tmp_path / "in"
    inputs.mkdir()
    for n in range(2):  # an original of 80 kB fits; its page image (about 190 kB) does not
        (inputs / f"e-invoice {n}.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", n))
    common = ["--store", str(store), "--index", str(index), "--workers", "1"]
    assert main(["verify", *common[:4]]) == 0  # creates the (empty) store and index
    capsys.readouterr()
    filler = fill(small_disk, leave=120_000)

    assert main(["ingest", str(inputs), *common]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("the disk is full (No space left on device)") == 2, captured.err
    assert re.search(r"^failed\s+2$", captured.out, re.M), captured.out
    assert not list(store.rglob("result.json"))  # no record was committed
    assert not list(store.rglob(".tmp-*"))  # no half-written object left behind
    assert main(["query", *common[:4], "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # nothing half-written is indexed
    assert main(["verify", *common[:4], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] and len(report["incomplete"]) >= 1  # the cut-short saves, not problems

    filler.unlink()
    assert main(["ingest", str(inputs), *common]) == 0
    capsys.readouterr()
    assert main(["query", *common[:4], "--format", "json"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert sorted(row["source_name"] for row in stored) == ["e-invoice 0.pdf", "e-invoice 1.pdf"]
    assert main(["verify", "--deep", *common[:4], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] and report["incomplete"] == [] and report["documents"] == 2
