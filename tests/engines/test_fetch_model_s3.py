"""`ocr-runtime fetch-model` from the real S3 server of `scripts/infra/s3.sh` (S3Proxy, which
checks AWS Signature V4): the wheel's models uploaded as a folder and as an archive, fetched
with the OCR_MODEL_S3_* settings; a refused key or a missing object names what to fix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocr_runtime.adapters.engines import ModelError
from ocr_runtime.adapters.model_fetch import fetch_model
from ocr_runtime.adapters.s3_fetch import S3Source
from ocr_runtime.adapters.sigv4 import S3Credentials
from ocr_runtime.bootstrap import cli
from tests.conftest import S3Server
from tests.engines.model_dirs import NAME, VERSION, expected_checksum, onnx_model_dir
from tests.support.s3 import Bucket

pytestmark = pytest.mark.integration

FILES = ["MANIFEST.json", "det.onnx", "rec.onnx"]


@pytest.fixture(scope="module")
def uploaded(
    s3: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Bucket, str]]:
    """The bucket and a fresh prefix holding `model/` and `model.tar.gz`."""
    bucket = Bucket(s3)
    prefix = f"it-{uuid.uuid4().hex[:10]}"
    model = onnx_model_dir(tmp_path_factory.mktemp("s3") / "model", cls=False)
    bucket.put_folder(model, f"{prefix}/model")
    bucket.put_archive(model, f"{prefix}/model.tar.gz")
    yield bucket, prefix
    bucket.delete_written()


@pytest.fixture
def s3_settings(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The init container's environment as the operator renders it for the local server."""
    monkeypatch.setenv("OCR_MODEL_S3_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("OCR_MODEL_S3_ACCESS_KEY_ID", s3.access_key_id)
    monkeypatch.setenv("OCR_MODEL_S3_SECRET_ACCESS_KEY", s3.secret_access_key)


@pytest.mark.usefixtures("s3_settings")
@pytest.mark.parametrize("key", ["model/", "model.tar.gz"])
def test_fetch_model_reports_the_identity_of_what_it_fetched(
    uploaded: tuple[Bucket, str],
    key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket, prefix = uploaded
    source = bucket.location(f"{prefix}/{key}")
    dest = tmp_path / "models"
    monkeypatch.setattr(cli, "TERMINATION_LOG", tmp_path / "termination-log")
    with pytest.raises(SystemExit) as exited:
        cli.main(["fetch-model", "--from", source, "--to", str(dest)])
    assert exited.value.code == 0
    assert sorted(p.name for p in dest.iterdir()) == FILES
    checksum = expected_checksum(dest, ["det.onnx", "rec.onnx"])
    assert (
        f"fetched model {NAME} {VERSION} (sha256 {checksum}) from {source}"
        in capsys.readouterr().err
    )


@pytest.mark.usefixtures("s3_settings")
def test_a_wrong_secret_key_is_permanent_and_names_the_setting(
    uploaded: tuple[Bucket, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, prefix = uploaded
    monkeypatch.setenv("OCR_MODEL_S3_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setattr(cli, "TERMINATION_LOG", tmp_path / "termination-log")
    source = bucket.location(f"{prefix}/model.tar.gz")
    with pytest.raises(SystemExit) as exited:
        cli.main(["fetch-model", "--from", source, "--to", str(tmp_path / "models")])
    assert exited.value.code == cli.EXIT_MODEL_REFUSED
    message = (tmp_path / "termination-log").read_text()
    assert message.startswith(f"model refused: {source}: the signature does not match")
    assert "OCR_MODEL_S3_SECRET_ACCESS_KEY" in message and "SignatureDoesNotMatch" in message


def test_an_unknown_access_key_names_its_setting(
    uploaded: tuple[Bucket, str], s3: S3Server, tmp_path: Path
) -> None:
    bucket, prefix = uploaded
    stranger = S3Source(s3.endpoint, S3Credentials("AKIDNOBODYKNOWS", s3.secret_access_key))
    with pytest.raises(ModelError, match=r"no access key OCR_MODEL_S3_ACCESS_KEY_ID .*403"):
        fetch_model(bucket.location(f"{prefix}/model/"), tmp_path, object_store=stranger)


def test_a_missing_object_names_the_key(
    uploaded: tuple[Bucket, str], s3: S3Server, tmp_path: Path
) -> None:
    bucket, prefix = uploaded
    source = S3Source(s3.endpoint, bucket.credentials)
    missing = f"s3://{s3.bucket}/{prefix}/nowhere/MANIFEST.json"
    with pytest.raises(ModelError, match=f"^{missing}: no such key \\(HTTP 404 NoSuchKey\\)$"):
        fetch_model(bucket.location(f"{prefix}/nowhere/"), tmp_path, object_store=source)
    with pytest.raises(ModelError, match=f"{prefix}/gone.tar.gz: no such key"):
        fetch_model(bucket.location(f"{prefix}/gone.tar.gz"), tmp_path, object_store=source)


def test_unsigned_requests_to_a_private_bucket_are_denied(
    uploaded: tuple[Bucket, str], s3: S3Server, tmp_path: Path
) -> None:
    bucket, prefix = uploaded
    anonymous = S3Source(s3.endpoint, credentials=None)
    with pytest.raises(ModelError, match=r"access denied .* only a public bucket answers"):
        fetch_model(bucket.location(f"{prefix}/model/"), tmp_path, object_store=anonymous)
