"""The default OCR engine (RapidOCR's models, its steps run by ``pipeline.ocr.onnx``).

Real models, real pages: the sample invoices in samples/ and one real invoice from
../shared/eval. Speed is measured by ``make bench``, never here.
"""

from __future__ import annotations

import pickle
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.config import Settings
from pipeline.ocr import create_engine, get_engine
from pipeline.ocr.onnx import (
    OWN_WIDTH_SURE,
    RAPID_MIN_WIDTH,
    REC_MIN_WIDTH,
    TEXT_SCORE,
    OnnxEngine,
    OnnxOptions,
    detection_scale,
    own_width,
)
from pipeline.ocr.openvino_runtime import OpenVinoDetector, cpu_has_avx512, detector_runtime
from pipeline.preprocess import rotate_quadrant
from tests.conftest import SAMPLES

CLEAN = SAMPLES / "vat_special_clean.png"


def _texts(lines: list) -> list[str]:
    return [unicodedata.normalize("NFKC", line.text).replace(" ", "") for line in lines]


# --------------------------------------------------------------------------- fast


def test_detection_scale_caps_the_long_side_but_keeps_small_print() -> None:
    # A 200-dpi A5 invoice page: long side to 1280.
    assert detection_scale(1100, 1700, 1280) == pytest.approx(1280 / 1700)
    # A long receipt: the short side stays at RapidOCR's 736 px minimum.
    assert detection_scale(2500, 1000, 1280) == pytest.approx(736 / 1000)
    # Small pages are scaled up as RapidOCR does (short side to 736), whatever the cap.
    assert detection_scale(600, 800, 1280) == pytest.approx(736 / 600)
    # 0: RapidOCR's own sizes (long side at most 2000 px).
    assert detection_scale(2400, 3200, 0) == pytest.approx(2000 / 3200)
    # Never larger than RapidOCR's own choice.
    for height, width in [(1100, 1700), (2400, 3200), (500, 4000), (64, 320)]:
        assert detection_scale(height, width, 1280) <= detection_scale(height, width, 0) + 1e-9


def test_settings_carry_the_engine_levers_and_pickle() -> None:
    settings = Settings(ocr_det_max_side=0, ocr_rec_own_width="never", ocr_orientation="retry")
    again = pickle.loads(pickle.dumps(settings))
    assert again == settings
    assert (again.ocr_det_max_side, again.ocr_rec_own_width, again.ocr_orientation) == (0, "never", "retry")
    # Own width was a yes/no setting: old values still mean what they meant.
    assert Settings().ocr_rec_own_width == "flat"
    assert [Settings(ocr_rec_own_width=v).ocr_rec_own_width for v in (True, False, "true", "FALSE")] == [
        "always",
        "never",
        "always",
        "never",
    ]
    with pytest.raises(ValueError):
        Settings(ocr_rec_own_width="sometimes")
    with pytest.raises(ValueError):
        Settings(ocr_orientation="sideways")
    with pytest.raises(ValueError):
        Settings(ocr_det_max_side=-1)


# --------------------------------------------------------------------------- real OCR


@pytest.fixture(scope="module")
def engine() -> OnnxEngine:
    built = get_engine(Settings(threads_per_worker=1))
    assert isinstance(built, OnnxEngine)
    return built


@pytest.mark.slow
def test_reads_a_real_invoice_with_stage_timings(engine: OnnxEngine, eval_dir: Path) -> None:
    image = cv2.imread(str(eval_dir / "cn" / "cn_034.png"))
    height, width = image.shape[:2]
    timings: dict[str, float] = {}
    page = engine.recognize(image, page=1, timings=timings)
    text = "".join(_texts(page.lines))
    assert "41539530" in text  # invoice number
    assert "012001800111" in text  # invoice code
    assert set(timings) == {"detection", "recognition"}
    assert all(seconds > 0 for seconds in timings.values())
    for line in page.lines:
        assert line.page == 1
        assert 0.5 <= line.confidence <= 1.0  # RapidOCR's text_score filter
        assert 0.0 <= line.x0 <= line.x1 <= width
        assert 0.0 <= line.y0 <= line.y1 <= height


@pytest.mark.slow
def test_own_width_and_small_detection_read_what_the_defaults_read(engine: OnnxEngine) -> None:
    """The levers change how lines are cut and padded, not what they say."""
    image = cv2.imread(str(CLEAN))
    levers = OnnxEngine(options=OnnxOptions(det_max_side=1280, rec_own_width="always"))
    fast = "".join(_texts(levers.recognize(image).lines))
    plain = OnnxEngine(options=OnnxOptions(det_max_side=0, rec_own_width="never"))
    slow = [text for text in _texts(plain.recognize(image).lines) if len(text) >= 4]
    # Lines may be split or joined differently; their text is still there.
    assert sum(text in fast for text in slow) >= 0.8 * len(slow)
    for value in ("1100214130", "10631331", "91110108MAUJFMDA5F", "48360.72"):
        assert value in fast


@pytest.mark.slow
@pytest.mark.parametrize("turned_by", [90, 180, 270])
def test_orientation_is_decided_once_from_the_boxes(engine: OnnxEngine, turned_by: int) -> None:
    upright = cv2.imread(str(CLEAN))
    image = rotate_quadrant(upright, turned_by)
    timings: dict[str, float] = {}
    turned, page, angle = engine.read_upright(image, timings=timings)
    assert (turned_by + angle) % 360 == 0
    assert turned.shape == upright.shape
    assert "10631331" in "".join(_texts(page.lines))
    # One detection to decide, one on the turned page; never a whole re-read per guess.
    assert "orientation" in timings


@pytest.mark.slow
def test_upright_page_needs_no_turn_and_blank_page_reads_nothing(engine: OnnxEngine) -> None:
    image = cv2.imread(str(CLEAN))
    turned, page, angle = engine.read_upright(image)
    assert angle == 0 and turned is image and len(page.lines) > 20
    blank = np.full((300, 400, 3), 255, np.uint8)
    _, page, angle = engine.read_upright(blank)
    assert page.lines == [] and angle == 0


@pytest.mark.slow
def test_retry_orientation_setting_still_works() -> None:
    retry = create_engine(Settings(ocr_orientation="retry", threads_per_worker=1))
    image = rotate_quadrant(cv2.imread(str(CLEAN)), 180)
    _, page, angle = retry.read_upright(image)
    assert angle == 180
    assert "10631331" in "".join(_texts(page.lines))


def test_auto_runtime_takes_openvino_only_where_the_cpu_has_avx512() -> None:
    assert detector_runtime("auto") == ("openvino" if cpu_has_avx512() else "onnxruntime")
    assert detector_runtime("openvino") == "openvino"
    assert detector_runtime("onnxruntime") == "onnxruntime"
    assert Settings().ocr_runtime == "auto"


@pytest.mark.slow
def test_openvino_detection_finds_the_boxes_onnx_runtime_finds(eval_dir: Path) -> None:
    """The OpenVINO detector (f32) against RapidOCR's ONNX Runtime session on the same file."""
    engine = OnnxEngine(options=OnnxOptions(runtime="openvino"))
    assert isinstance(engine._parts.det.session, OpenVinoDetector)
    reference = OnnxEngine(options=OnnxOptions(runtime="onnxruntime"))
    assert not isinstance(reference._parts.det.session, OpenVinoDetector)
    for image in (cv2.imread(str(CLEAN)), cv2.imread(str(eval_dir / "cn" / "cn_034.png"))):
        ours, theirs = engine._detect(image), reference._detect(image)
        assert ours.shape == theirs.shape and len(ours) > 20
        assert np.abs(ours - theirs).max() <= 1.0  # pixels of the page
    # A page of another size compiles the model for that shape; sizes seen lately reuse theirs.
    detector = engine._parts.det.session
    compiles = detector.compiles
    for _ in range(2):
        engine._detect(np.full((400, 600, 3), 255, np.uint8))
        engine._detect(np.full((480, 600, 3), 255, np.uint8))
    assert detector.compiles == compiles + 2
    assert "openvino" in engine.version()


@pytest.mark.slow
def test_lines_read_unsure_at_their_own_width_take_the_reading_padded_to_320_px() -> None:
    engine = OnnxEngine(options=OnnxOptions(rec_own_width="always"))
    image = cv2.imread(str(CLEAN))
    boxes = engine._detect(image)
    crops = engine._crops(image, boxes)
    own = [engine._parts.recognise_one(crop) for crop in crops]
    unsure = [i for i, (_, score) in enumerate(own) if score < OWN_WIDTH_SURE]
    again = {i: engine._parts.recognise_one(crops[i], RAPID_MIN_WIDTH) for i in unsure}
    readings = [again.get(i, own[i]) for i in range(len(crops))]
    expected = [text.strip() for text, score in readings if text.strip() and score >= TEXT_SCORE]
    lines = engine._read(image, boxes, 0, None)
    assert unsure and len(unsure) < len(crops) / 2  # most lines of a clean page are sure
    assert [line.text for line in lines] == expected


@pytest.mark.slow
def test_by_default_own_width_is_for_flat_pages_and_photos_are_read_padded(engine: OnnxEngine) -> None:
    """A page cut out of a photo is read in RapidOCR's padded batches; a scan or render at own width."""
    assert engine.options.rec_own_width == "flat" and "flat pages" in engine.version()
    image = cv2.imread(str(CLEAN))
    boxes = engine._detect(image)
    always = OnnxEngine(options=OnnxOptions(rec_own_width="always"))
    never = OnnxEngine(options=OnnxOptions(rec_own_width="never"))
    flat, photo = engine._read(image, boxes, 0, None), engine._read(image, boxes, 0, None, photographed=True)
    assert [line.text for line in flat] == [line.text for line in always._read(image, boxes, 0, None)]
    assert [line.text for line in photo] == [line.text for line in never._read(image, boxes, 0, None, True)]
    assert [line.confidence for line in flat] != [line.confidence for line in photo]


@pytest.mark.slow
def test_an_unsure_line_already_320_px_wide_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Padded to 320 px, such a line is the very same tensor: reading it again only costs time."""
    engine = OnnxEngine(options=OnnxOptions(rec_own_width="always"))
    image = cv2.imread(str(CLEAN))
    boxes = engine._detect(image)
    crops = engine._crops(image, boxes)
    for crop in crops:  # the premise: a wide line reads the same at either floor
        if own_width(crop) >= RAPID_MIN_WIDTH:
            assert engine._parts.recognise_one(crop) == engine._parts.recognise_one(crop, RAPID_MIN_WIDTH)
            break
    read_again: list[int] = []
    recognise_one = engine._parts.recognise_one

    def counting(crop: np.ndarray, min_width: int = REC_MIN_WIDTH) -> tuple[str, float]:
        text, score = recognise_one(crop, min_width)
        if min_width == RAPID_MIN_WIDTH:
            read_again.append(own_width(crop))
        return text, 0.5 if min_width != RAPID_MIN_WIDTH else score  # every first reading unsure

    monkeypatch.setattr(engine._parts, "recognise_one", counting)
    engine._read(image, boxes, 0, None)
    narrow = [crop for crop in crops if own_width(crop) < RAPID_MIN_WIDTH]
    assert narrow and len(narrow) < len(crops)
    assert len(read_again) == len(narrow) and max(read_again) < RAPID_MIN_WIDTH
