import sqlite3
from pathlib import Path

import pytest

from ocr_runtime.bootstrap.cli import main


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OCR_BATCH_MAX_SIZE", "0"),
        ("OCR_DATABASE_URL", "postgresql://nope"),
        ("OCR_API_KEY_HASHES", "not-a-digest"),
        ("OCR_ENGINE", "tesseract"),
    ],
)
def test_bad_settings_exit_2_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exited:
        main(["migrate"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ocr-runtime: invalid settings")
    assert variable in err


def test_unknown_role_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2


def test_migrate_creates_the_schema(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "sub" / "ocr.db"
    monkeypatch.setenv("OCR_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    with pytest.raises(SystemExit) as exited:
        main(["migrate"])
    assert exited.value.code == 0
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"jobs", "blob_chunks", "alembic_version"} <= tables
