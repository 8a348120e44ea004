"""AWS Signature Version 4 for S3 requests, standard library only.

What `fetch-model` needs of it: the headers that authenticate one request to an S3 API
(AWS, or any server that checks SigV4: MinIO, Ceph, S3Proxy), path-style or virtual-hosted
alike since the host is signed as the URL names it. The payload is either hashed by the
caller (a PUT of known bytes) or declared UNSIGNED-PAYLOAD (a GET, whose body is empty).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Credentials:
    """An access key pair and the region its requests are signed for."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = DEFAULT_REGION


def signed_headers(
    method: str,
    url: str,
    credentials: S3Credentials,
    *,
    at: datetime,
    payload_sha256: str = UNSIGNED_PAYLOAD,
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`headers` plus Host, X-Amz-Date, X-Amz-Content-Sha256 and the Authorization that signs
    them all, for `method` on `url` at the instant `at`."""
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    sent = {
        **(headers or {}),
        "Host": urlsplit(url).netloc,
        "X-Amz-Date": stamp,
        "X-Amz-Content-Sha256": payload_sha256,
    }
    names, request = canonical_request(method, url, sent, payload_sha256)
    scope = f"{stamp[:8]}/{credentials.region}/{SERVICE}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()]
    )
    key = signing_key(credentials.secret_access_key, stamp[:8], credentials.region)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    sent["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope},"
        f"SignedHeaders={names},Signature={signature}"
    )
    return sent


def canonical_request(
    method: str, url: str, headers: Mapping[str, str], payload_sha256: str
) -> tuple[str, str]:
    """(the signed header names, `;`-joined; the canonical request) of a request that sends
    every one of `headers`."""
    parts = urlsplit(url)
    canonical = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    names = sorted(canonical)
    lines = [
        method.upper(),
        canonical_path(parts.path),
        canonical_query(parts.query),
        "".join(f"{name}:{canonical[name]}\n" for name in names),
        ";".join(names),
        payload_sha256,
    ]
    return ";".join(names), "\n".join(lines)


def canonical_path(path: str) -> str:
    """The path as S3 signs it: every byte but unreserved ones and `/` percent-encoded, once
    (a path that arrives encoded is decoded first, so it is not encoded twice)."""
    return quote(unquote(path or "/"), safe="/~")


def canonical_query(query: str) -> str:
    """Parameters sorted by name then value, names and values percent-encoded; a bare name
    (`?uploads`) signs with an empty value."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{quote(name, safe='~')}={quote(value, safe='~')}" for name, value in pairs)


def signing_key(secret_access_key: str, date: str, region: str) -> bytes:
    """The key derived for one day, region and service (what the secret itself never signs)."""
    key = f"AWS4{secret_access_key}".encode()
    for part in (date, region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
