"""`ocr-runtime <role>`: one image, one entry point. Settings are read and validated once,
here; a bad value prints what is wrong and exits with status 2."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic_settings import SettingsError

from ocr_contract import Role
from ocr_runtime.core.settings import Settings

EXIT_BAD_SETTINGS = 2
EXIT_ENGINE_MISMATCH = 3
# A model folder that must not be served: a file missing, corrupt or unlike its manifest.
EXIT_MODEL_REFUSED = 4
# fetch-model could not download the model (network, HTTP error): the kubelet retries.
EXIT_MODEL_UNREACHABLE = 5
# A service (Kafka) refused the process's credentials or certificate: the settings must change.
EXIT_ACCESS_DENIED = 6
# Kubernetes shows this file's content as the container's termination message.
TERMINATION_LOG = Path("/dev/termination-log")

ROLES = {
    Role.API: "HTTP API: stores jobs and publishes them to Kafka (never runs the model)",
    Role.WORKER: "GPU/CPU worker: consumes jobs from Kafka and runs the OCR engine",
    Role.WRITER: "result writer (writer mode): persists results from the result topic",
    Role.ALL_IN_ONE: "API, SQLite, in-process queue and worker in one process on 127.0.0.1:8000",
    Role.MIGRATE: "apply the database migrations (Alembic) to OCR_DATABASE_URL",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocr-runtime",
        description="OCR serving runtime. Configuration comes from OCR_* environment variables "
        "(see the README, section Configuration).",
    )
    roles = parser.add_subparsers(dest="role", required=True, metavar="ROLE")
    for name, text in ROLES.items():
        roles.add_parser(name, help=text, description=text)
    from ocr_runtime.bootstrap import evaluate, fetch_model  # noqa: PLC0415

    evaluate.add_parser(roles)
    fetch_model.add_parser(roles)
    return parser


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """`overrides`: values given on the command line, which win over the environment."""
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        problems = "\n".join(_describe(err["loc"], err["msg"]) for err in exc.errors())
        print(f"ocr-runtime: invalid settings:\n{problems}", file=sys.stderr)
    except SettingsError as exc:
        print(f"ocr-runtime: invalid settings: {exc}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_SETTINGS)


def _describe(location: tuple[int | str, ...], message: str) -> str:
    if not location:  # a check across fields: the message names the variables
        return f"  {message}"
    return f"  OCR_{'_'.join(str(part) for part in location).upper()}: {message}"


def _migrate(settings: Settings) -> int:
    from ocr_runtime.core.logging import configure_logging  # noqa: PLC0415
    from ocr_runtime.migrations import upgrade_database  # noqa: PLC0415

    configure_logging(settings.log_level)
    upgrade_database(settings.database_url)
    print("ocr-runtime: database migrated to the latest revision", file=sys.stderr)
    return 0


def _runner(role: str) -> Callable[[Settings], int]:
    # Lazy imports: a role loads only its own dependencies (no Kafka client in all-in-one,
    # no OCR engine in the api).
    if role == Role.API:
        from ocr_runtime.bootstrap import api_role  # noqa: PLC0415

        return api_role.run
    if role == Role.WORKER:
        from ocr_runtime.bootstrap import worker_role  # noqa: PLC0415

        return worker_role.run
    if role == Role.WRITER:
        from ocr_runtime.bootstrap import writer_role  # noqa: PLC0415

        return writer_role.run
    if role == Role.ALL_IN_ONE:
        from ocr_runtime.bootstrap import all_in_one  # noqa: PLC0415

        return all_in_one.run
    return _migrate


def _stop(problem: str, status: int) -> NoReturn:
    """Print why the process stops, also as Kubernetes' termination message, and exit."""
    print(f"ocr-runtime: {problem}", file=sys.stderr)
    with contextlib.suppress(OSError):  # outside Kubernetes the file is not writable
        TERMINATION_LOG.write_text(problem)
    raise SystemExit(status)


def check_engine(role: str, settings: Settings) -> None:
    """A role that runs the model stops at once when the image lacks the engine the
    settings name, with a message naming the mismatch (also as the termination message)."""
    if role not in (Role.WORKER, Role.ALL_IN_ONE, "evaluate"):
        return
    from ocr_runtime.adapters.engines import engine_mismatch  # noqa: PLC0415

    problem = engine_mismatch(settings.engine, settings.device)
    if problem is not None:
        _stop(problem, EXIT_ENGINE_MISMATCH)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.role == "evaluate":
        from ocr_runtime.bootstrap.evaluate import settings_for  # noqa: PLC0415

        settings = load_settings(settings_for(args))
    else:
        settings = load_settings()
    check_engine(args.role, settings)
    from ocr_runtime.adapters.engines import ModelError  # noqa: PLC0415
    from ocr_runtime.adapters.model_fetch import ModelUnreachableError  # noqa: PLC0415
    from ocr_runtime.application.errors import AccessDenied  # noqa: PLC0415

    try:
        if args.role == "evaluate":
            from ocr_runtime.bootstrap.evaluate import run as evaluate  # noqa: PLC0415

            raise SystemExit(evaluate(settings, args))
        if args.role == "fetch-model":
            from ocr_runtime.bootstrap.fetch_model import run as fetch  # noqa: PLC0415

            raise SystemExit(fetch(settings, args))
        raise SystemExit(_runner(args.role)(settings))
    except ModelError as exc:
        _stop(f"model refused: {exc}", EXIT_MODEL_REFUSED)
    except ModelUnreachableError as exc:
        _stop(f"model unreachable: {exc}", EXIT_MODEL_UNREACHABLE)
    except AccessDenied as exc:
        _stop(f"access denied: {exc}", EXIT_ACCESS_DENIED)
