"""`ocr-runtime evaluate`: read a folder of images with a model and score the lines against
a truth file. Exit status 0, or 1 when `--min-accuracy` is given and not met, so a CI job can
gate a model (and the registry alias that points at it) on the result."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from ocr_runtime.adapters.engines import build_engine, resolve_models
from ocr_runtime.application.evaluation import Evaluation, score_image
from ocr_runtime.application.model import ModelIdentity
from ocr_runtime.application.ports import Image
from ocr_runtime.core.logging import configure_logging
from ocr_runtime.core.settings import Settings

EXIT_BELOW_THRESHOLD = 1
EXIT_BAD_INPUT = 2


class EvaluationInputError(Exception):
    """The truth file or the image folder cannot be evaluated as given."""


def add_parser(roles: Any) -> None:
    """The `evaluate` sub-command on the CLI's sub-parsers."""
    text = "score a model on images with known text (line accuracy, seconds per image)"
    parser = roles.add_parser("evaluate", help=text, description=text)
    parser.add_argument("--images", type=Path, required=True, help="folder of the images")
    parser.add_argument(
        "--truth", type=Path, required=True,
        help="JSON object: image file name -> list of its expected lines",
    )  # fmt: skip
    parser.add_argument(
        "--model-dir", type=Path, help="model folder (default: the models in the image)"
    )
    parser.add_argument("--engine", choices=["onnx", "paddle"], help="default: OCR_ENGINE")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--min-accuracy", type=float, metavar="X",
        help="exit 1 when the line accuracy is below X (0-1)",
    )  # fmt: skip


def settings_for(args: argparse.Namespace) -> dict[str, Any]:
    """Settings the command line overrides; the rest comes from OCR_* as for any role."""
    overrides: dict[str, Any] = {}
    if args.engine is not None:
        overrides["engine"] = args.engine
    if args.model_dir is not None:
        overrides["model_dir"] = args.model_dir
    return overrides


def run(settings: Settings, args: argparse.Namespace) -> int:
    configure_logging("WARNING")  # the report goes to stdout; logs only for trouble
    try:
        truth = load_truth(args.truth)
        images = {name: load_image(args.images / name) for name in truth}
    except EvaluationInputError as exc:
        print(f"ocr-runtime evaluate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    models = resolve_models(settings)
    engine = build_engine(settings, models)
    engine.load()
    scores = []
    for name, image in images.items():
        started = time.perf_counter()
        (result,) = engine.recognize_batch([image])
        seconds = time.perf_counter() - started
        scores.append(score_image(name, truth[name], [ln.text for ln in result.lines], seconds))
    evaluation = Evaluation(tuple(scores))
    passed = args.min_accuracy is None or evaluation.line_accuracy >= args.min_accuracy
    if args.json:
        body: dict[str, object] = {"model": models.identity.as_dict()}
        body["engine"] = settings.engine.value
        body |= evaluation.as_dict() | {"min_accuracy": args.min_accuracy, "passed": passed}
        print(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        print(render_table(evaluation, models.identity, args.min_accuracy, passed))
    return 0 if passed else EXIT_BELOW_THRESHOLD


def load_truth(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationInputError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict) or not data:
        raise EvaluationInputError(f"{path}: must map image file names to lists of lines")
    for name, lines in data.items():
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise EvaluationInputError(f"{path}: {name!r} must map to a list of strings")
    return {str(name): list(lines) for name, lines in data.items()}


def load_image(path: Path) -> Image:
    try:
        with PILImage.open(path) as picture:
            return np.asarray(picture.convert("RGB"), dtype=np.uint8).copy()
    except OSError as exc:  # missing, unreadable or not an image
        raise EvaluationInputError(f"{path}: cannot read the image ({exc})") from exc


def render_table(
    evaluation: Evaluation, model: ModelIdentity, minimum: float | None, passed: bool
) -> str:
    width = max([len("image"), *(len(score.image) for score in evaluation.scores)])
    rows = [f"model {model.name} version {model.version} sha256 {model.checksum}", ""]
    rows.append(f"{'image':<{width}}  lines  read  accuracy  seconds")
    for s in evaluation.scores:
        rows.append(
            f"{s.image:<{width}}  {s.expected:>5}  {s.matched:>4}  {s.accuracy:>8.3f}"
            f"  {s.seconds:>7.3f}"
        )
        rows.extend(f"{'':<{width}}  missed: {line}" for line in s.missed)
    rows.append("")
    rows.append(f"line accuracy      {evaluation.line_accuracy:.4f}")
    rows.append(f"seconds per image  {evaluation.seconds_per_image:.3f}")
    if minimum is not None:
        rows.append(f"minimum accuracy   {minimum:.4f}: {'passed' if passed else 'FAILED'}")
    return "\n".join(rows)
