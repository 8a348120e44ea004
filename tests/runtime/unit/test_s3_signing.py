"""The SigV4 signer against AWS's published example, and how S3's answers become errors:
what a retry cannot mend names the setting or the key, the rest is worth a retry."""

from __future__ import annotations

import hashlib
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from ocr_runtime.adapters.engines import ModelError
from ocr_runtime.adapters.model_fetch import ModelUnreachableError, fetch_model
from ocr_runtime.adapters.s3_fetch import S3Source, s3_error, split_location
from ocr_runtime.adapters.sigv4 import (
    EMPTY_PAYLOAD_SHA256,
    S3Credentials,
    canonical_path,
    canonical_query,
    canonical_request,
    signed_headers,
)
from ocr_runtime.core.settings import Settings

# The "GET Object" example of the Amazon S3 API reference (Signature Version 4, header auth).
EXAMPLE = S3Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
EXAMPLE_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
)


def test_the_published_get_object_example_signs_to_its_signature() -> None:
    headers = signed_headers(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        EXAMPLE,
        at=datetime(2013, 5, 24, tzinfo=UTC),
        payload_sha256=EMPTY_PAYLOAD_SHA256,
        headers={"Range": "bytes=0-9"},
    )
    assert headers == {
        "Range": "bytes=0-9",
        "Host": "examplebucket.s3.amazonaws.com",
        "X-Amz-Date": "20130524T000000Z",
        "X-Amz-Content-Sha256": EMPTY_PAYLOAD_SHA256,
        "Authorization": EXAMPLE_AUTHORIZATION,
    }


def test_the_example_canonical_request_hashes_as_published() -> None:
    headers = {
        "Host": "examplebucket.s3.amazonaws.com",
        "Range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY_PAYLOAD_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    url = "https://examplebucket.s3.amazonaws.com/test.txt"
    names, request = canonical_request("GET", url, headers, EMPTY_PAYLOAD_SHA256)
    assert names == "host;range;x-amz-content-sha256;x-amz-date"
    assert hashlib.sha256(request.encode()).hexdigest() == (
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    )


def test_the_signature_covers_the_region_the_clock_and_the_path() -> None:
    at = datetime(2013, 5, 24, tzinfo=UTC)
    url = "http://127.0.0.1:15900/bucket/model/det.onnx"
    base = signed_headers("GET", url, EXAMPLE, at=at)["Authorization"]
    elsewhere = S3Credentials(EXAMPLE.access_key_id, EXAMPLE.secret_access_key, "eu-west-1")
    assert (
        "/eu-west-1/s3/aws4_request"
        in signed_headers("GET", url, elsewhere, at=at)["Authorization"]
    )
    others = {
        signed_headers("GET", url, elsewhere, at=at)["Authorization"],
        signed_headers("GET", url, EXAMPLE, at=at.replace(second=1))["Authorization"],
        signed_headers("GET", url + "x", EXAMPLE, at=at)["Authorization"],
    }
    assert base not in others and len(others) == 3
    assert signed_headers("GET", url, EXAMPLE, at=at)["Host"] == "127.0.0.1:15900"


def test_paths_and_queries_are_encoded_as_s3_signs_them() -> None:
    assert canonical_path("/b/a model/ü~x.onnx") == "/b/a%20model/%C3%BC~x.onnx"
    assert canonical_path("/b/a%20model/") == "/b/a%20model/"  # not encoded twice
    assert canonical_path("") == "/"
    assert canonical_query("prefix=a b&list-type=2&delimiter=/") == (
        "delimiter=%2F&list-type=2&prefix=a%20b"
    )
    assert canonical_query("uploads") == "uploads="


def test_the_secret_key_stays_out_of_reprs() -> None:
    assert EXAMPLE.secret_access_key not in repr(EXAMPLE)


@pytest.mark.parametrize(
    ("status", "code", "names"),
    [
        (403, "SignatureDoesNotMatch", "OCR_MODEL_S3_SECRET_ACCESS_KEY"),
        (403, "InvalidAccessKeyId", "OCR_MODEL_S3_ACCESS_KEY_ID"),
        (400, "AuthorizationHeaderMalformed", "OCR_MODEL_S3_REGION"),
        (403, "AccessDenied", "access denied"),
        (403, "RequestTimeTooSkewed", "clock"),
        (301, "PermanentRedirect", "check OCR_MODEL_S3_ENDPOINT and OCR_MODEL_S3_REGION"),
        (404, "NoSuchKey", "s3://b/m/det.onnx: no such key (HTTP 404 NoSuchKey)"),
        (404, "NoSuchBucket", "no such bucket"),
        (404, "", "s3://b/m/det.onnx: no such key (HTTP 404)"),
        (403, "", "refused by the server (HTTP 403 no code)"),
    ],
)
def test_what_a_retry_cannot_mend_is_permanent_and_named(
    status: int, code: str, names: str
) -> None:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code></Error>".encode() if code else b""
    error = s3_error("s3://b/m/det.onnx", status, body)
    assert isinstance(error, ModelError)
    assert names in str(error) and str(error).startswith("s3://b/m/det.onnx: ")


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalError"), (503, "SlowDown"), (502, ""), (429, "")]
)
def test_a_failing_or_busy_server_is_worth_a_retry(status: int, code: str) -> None:
    body = f"<Error><Code>{code}</Code></Error>".encode()
    error = s3_error("s3://b/m.tar.gz", status, body)
    assert isinstance(error, ModelUnreachableError)
    assert str(error).startswith(f"GET s3://b/m.tar.gz: HTTP {status}")


def test_a_refused_connection_is_worth_a_retry(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on once this socket is gone
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    source = S3Source(f"http://127.0.0.1:{port}", EXAMPLE)
    with pytest.raises(
        ModelUnreachableError, match=rf"GET s3://bucket/m/MANIFEST.json from .*:{port}"
    ):
        fetch_model("s3://bucket/m/", tmp_path, object_store=source)


def test_locations_need_a_bucket_and_a_key_and_the_settings_an_endpoint(tmp_path: Path) -> None:
    assert split_location("s3://models/ocr/v2/") == ("models", "ocr/v2/")
    for bad in ("s3://models", "s3://Models/x", "s3:///x", "https://models/x"):
        with pytest.raises(ModelError, match="not s3://<bucket>/<key or folder/>"):
            split_location(bad)
    with pytest.raises(ModelError, match="needs OCR_MODEL_S3_ENDPOINT"):
        fetch_model("s3://models/ocr.tar.gz", tmp_path)


def test_settings_give_the_source_its_endpoint_region_and_keys() -> None:
    assert S3Source.from_settings(Settings()) is None
    settings = Settings(
        model_s3_endpoint="http://minio.storage.svc:9000/",
        model_s3_region="eu-west-1",
        model_s3_access_key_id="AKID",
        model_s3_secret_access_key="k3y-9f3e",
    )
    source = S3Source.from_settings(settings)
    assert source == S3Source(
        "http://minio.storage.svc:9000", S3Credentials("AKID", "k3y-9f3e", "eu-west-1")
    )
    assert "k3y-9f3e" not in repr(settings) and "k3y-9f3e" not in repr(source)
    assert source.url("s3://models/a b/det.onnx") == (
        "http://minio.storage.svc:9000/models/a%20b/det.onnx"
    )
    anonymous = S3Source.from_settings(Settings(model_s3_endpoint="https://s3.example.com"))
    assert anonymous is not None and anonymous.credentials is None


def test_an_access_key_without_its_secret_is_a_bad_setting() -> None:
    with pytest.raises(ValidationError, match=r"OCR_MODEL_S3_ACCESS_KEY_ID and .* go together"):
        Settings(model_s3_endpoint="https://s3.example.com", model_s3_access_key_id="AKID")
    with pytest.raises(ValidationError, match="model_s3_endpoint"):
        Settings(model_s3_endpoint="s3.example.com")
