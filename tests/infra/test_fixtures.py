"""The service fixtures fail loudly (never skip) when a service cannot be started."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import _service_value, _Starter, read_local_env, s3_server


def test_read_local_env_parses_export_lines(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text("export A=1\n# comment\nexport B='x=y'\nNOT_EXPORTED=2\n", encoding="utf-8")
    assert read_local_env(env) == {"A": "1", "B": "x=y"}
    assert read_local_env(tmp_path / "missing") == {}


def test_unreachable_service_fails_with_the_start_attempt(tmp_path: Path) -> None:
    script = tmp_path / "up.sh"
    script.write_text("#!/bin/sh\necho 'port 1 is taken' >&2\nexit 3\n", encoding="utf-8")
    script.chmod(0o755)
    starter = _Starter(script, timeout_s=30)
    with pytest.raises(pytest.fail.Exception) as failed:
        _service_value("OCR_NO_SUCH_SERVICE", lambda _value: "unreachable", starter)
    message = str(failed.value)
    assert "OCR_NO_SUCH_SERVICE missing" in message
    assert "exited 3" in message
    assert "port 1 is taken" in message


def test_the_s3_fixture_names_the_variables_it_lacks() -> None:
    env = {"OCR_TEST_S3_ACCESS_KEY_ID": "AKID", "OCR_TEST_S3_BUCKET": "ocr-models"}
    with pytest.raises(pytest.fail.Exception) as failed:
        s3_server("http://127.0.0.1:15900", env)
    message = str(failed.value)
    assert "OCR_TEST_S3_SECRET_ACCESS_KEY missing" in message
    assert "s3.sh up" in message
    complete = {**env, "OCR_TEST_S3_SECRET_ACCESS_KEY": "secret"}
    assert s3_server("http://127.0.0.1:15900", complete).secret_access_key == "secret"
