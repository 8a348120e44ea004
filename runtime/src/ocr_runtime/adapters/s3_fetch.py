"""Objects of an S3 API, read with signed GETs for `fetch-model`'s s3:// sources.

Path-style URLs (`<endpoint>/<bucket>/<key>`), which every S3 implementation serves, and
AWS Signature V4 (`sigv4`) over the standard library's HTTP client: the init container runs
in the worker's image, which carries no AWS SDK. Without an access key the requests go
unsigned, which only a public bucket answers. S3's error codes decide the exception: what
a retry cannot mend (a key the server does not know, a wrong secret, a denied or missing
object) is a `ModelError` naming the setting or the object; a server that is down, busy or
failing is `ModelUnreachableError`, worth the kubelet's retry.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

from ocr_contract import Env
from ocr_runtime.adapters.engines._model_dir import ModelError
from ocr_runtime.adapters.model_fetch import S3_SCHEME, ModelUnreachableError, download
from ocr_runtime.adapters.sigv4 import S3Credentials, signed_headers
from ocr_runtime.core.settings import Settings

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")

ENDPOINT_SETTING = Env.MODEL_S3_ENDPOINT.value
REGION_SETTING = Env.MODEL_S3_REGION.value
ACCESS_KEY_SETTING = Env.MODEL_S3_ACCESS_KEY_ID.value
SECRET_KEY_SETTING = Env.MODEL_S3_SECRET_ACCESS_KEY.value

# S3 error codes a retry cannot mend, with what to fix (the object named by the caller).
_PERMANENT_CODES = {
    "InvalidAccessKeyId": f"the server knows no access key {ACCESS_KEY_SETTING}",
    "SignatureDoesNotMatch": f"the signature does not match: check {SECRET_KEY_SETTING} "
    f"(and that {ACCESS_KEY_SETTING} is its pair)",
    "AuthorizationHeaderMalformed": f"the server refuses the signature's scope: check "
    f"{REGION_SETTING}",
    "AccessDenied": f"access denied to the key {ACCESS_KEY_SETTING} (unset: unsigned "
    "requests, which only a public bucket answers)",
    "RequestTimeTooSkewed": "the server's clock and this node's differ by more than S3 allows",
    "PermanentRedirect": f"the bucket answers on another endpoint: check {ENDPOINT_SETTING} "
    f"and {REGION_SETTING}",
    "NoSuchKey": "no such key",
    "NoSuchBucket": "no such bucket",
    "InvalidBucketName": "not a bucket name the server accepts",
}


@dataclass(frozen=True)
class S3Source:
    """Where s3:// locations are read from, and as whom (None: unsigned requests)."""

    endpoint: str
    credentials: S3Credentials | None

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Source | None:
        """The S3 API the settings name; None without OCR_MODEL_S3_ENDPOINT."""
        if settings.model_s3_endpoint is None:
            return None
        credentials = None
        if settings.model_s3_access_key_id and settings.model_s3_secret_access_key:
            credentials = S3Credentials(
                settings.model_s3_access_key_id,
                settings.model_s3_secret_access_key.get_secret_value(),
                settings.model_s3_region,
            )
        return cls(settings.model_s3_endpoint.rstrip("/"), credentials)

    def url(self, location: str) -> str:
        """The path-style URL of `s3://bucket/key` (the key percent-encoded once)."""
        bucket, key = split_location(location)
        return f"{self.endpoint}/{bucket}/{quote(unquote(key), safe='/~')}"

    def download(self, location: str, target: Path) -> None:
        """The object at `location` (`s3://bucket/key`) written to `target`."""
        url = self.url(location)
        headers = (
            {}
            if self.credentials is None
            else signed_headers("GET", url, self.credentials, at=datetime.now(UTC))
        )
        request = urllib.request.Request(url, headers=headers)
        try:
            download(request, target, source=f"{location} from {self.endpoint}")
        except urllib.error.HTTPError as exc:
            raise s3_error(unquote(location), exc.code, exc.read()) from exc


def split_location(location: str) -> tuple[str, str]:
    """(bucket, key) of `s3://bucket/key`; the key may end in `/` (a folder)."""
    bucket, _, key = location.removeprefix(S3_SCHEME).partition("/")
    if not location.startswith(S3_SCHEME) or not _BUCKET.match(bucket) or not key:
        raise ModelError(f"{location}: not s3://<bucket>/<key or folder/>")
    return bucket, key


def s3_error(location: str, status: int, body: bytes) -> ModelError | ModelUnreachableError:
    """The exception for an S3 error response to a GET of `location`."""
    match = _ERROR_CODE.search(body)
    code = match[1].decode(errors="replace") if match else ""
    why = _PERMANENT_CODES.get(code)
    if why is not None:
        return ModelError(f"{location}: {why} (HTTP {status} {code})")
    if status == 404:
        return ModelError(f"{location}: no such key (HTTP 404)")
    if status in (400, 401, 403):
        return ModelError(f"{location}: refused by the server (HTTP {status} {code or 'no code'})")
    return ModelUnreachableError(f"GET {location}: HTTP {status} {code}".rstrip())
