"""`ocr-runtime fetch-model`: the init container of a worker whose model is not the image's.

Downloads the model into `--to` (the worker's OCR_MODEL_DIR), checks every file against
MANIFEST.json and the folder against the layout of OCR_ENGINE, and exits 0; otherwise it
exits with the cause as the container's termination message (see `cli.main`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ocr_runtime.adapters.engines import resolve_models
from ocr_runtime.adapters.model_fetch import fetch_model
from ocr_runtime.adapters.s3_fetch import S3Source
from ocr_runtime.core.settings import EngineKind, Settings


def add_parser(roles: Any) -> None:
    """The `fetch-model` sub-command on the CLI's sub-parsers."""
    text = "download a model folder into a directory and check it against its MANIFEST.json"
    parser = roles.add_parser("fetch-model", help=text, description=text)
    parser.add_argument(
        "--from", dest="source", required=True, metavar="URI",
        help="https://.../model.tar.gz, https://.../MANIFEST.json, https://.../folder/, "
        "s3://bucket/model.tar.gz, s3://bucket/folder/ (OCR_MODEL_S3_*) "
        "or mlflow-artifacts:/...",
    )  # fmt: skip
    parser.add_argument("--to", dest="dest", type=Path, required=True, help="target folder")
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking server (for mlflow-artifacts: locations)"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    root = fetch_model(
        args.source,
        args.dest,
        tracking_uri=args.tracking_uri,
        object_store=S3Source.from_settings(settings),
    )
    if settings.engine in (EngineKind.ONNX, EngineKind.PADDLE):
        # The worker would refuse a folder its engine cannot load: say so before it starts.
        identity = resolve_models(settings.model_copy(update={"model_dir": root})).identity
        what = f"{identity.name} {identity.version} (sha256 {identity.checksum})"
    else:
        what = "files"
    print(f"ocr-runtime: fetched model {what} from {args.source} into {root}", file=sys.stderr)
    return 0
