"""`spec.api.auth` and `spec.api.limits`: who may call the API, and how much.

The runtime side is `ocr_runtime.core.settings` (`OCR_API_KEY_HASHES`,
`OCR_RATE_LIMIT_PER_MINUTE`, `OCR_MAX_UPLOAD_BYTES`, `OCR_MAX_PIXELS`).
"""

from __future__ import annotations

from pydantic import Field

from ocr_operator.model._base import SecretKey, SecretName, WireModel
from ocr_operator.model.enums import AuthMode

# Keys of the Secret the operator generates (`<name>-api-key`) when auth names none.
GENERATED_KEY = "api-key"
GENERATED_HASHES = "hashes"


class ApiKeySecretRef(WireModel):
    """A Secret key holding the SHA-256 hex digests of the accepted API keys."""

    name: SecretName = Field(description="Secret name (in the resource's namespace).")
    key: SecretKey = Field(
        GENERATED_HASHES,
        description="Key whose value is one or more SHA-256 hex digests, comma-separated "
        '(`printf %s "$KEY" | sha256sum`).',
    )


class ApiAuth(WireModel):
    """Authentication of `/v1/*` (probes and `/metrics` stay open)."""

    mode: AuthMode = Field(
        AuthMode.API_KEY,
        description="ApiKey (default): callers send `Authorization: Bearer <key>`; None: no "
        "authentication, allowed only with serviceType ClusterIP.",
    )
    api_key_secret_ref: ApiKeySecretRef | None = Field(
        None,
        description="The Secret key of the accepted key digests (OCR_API_KEY_HASHES). Unset "
        "with mode ApiKey: the operator creates the Secret `<name>-api-key` (owned by this "
        "resource, never overwritten) with a random key under `api-key` and its digest under "
        "`hashes`.",
    )


class ApiLimits(WireModel):
    """Per-caller rate limit and upload limits of the API."""

    rate_limit_per_minute: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Submissions per caller (API key, else address) per minute, answered 429 "
        "above it (OCR_RATE_LIMIT_PER_MINUTE); 0: unlimited. Needs spec.redis.",
    )
    max_upload_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1024,
        le=2 * 1024 * 1024 * 1024,
        description="Largest upload in bytes, 413 above it (OCR_MAX_UPLOAD_BYTES).",
    )
    max_pixels: int = Field(
        40_000_000,
        ge=1,
        le=2_000_000_000,
        description="Largest image, or document page, in pixels, 422 above it (OCR_MAX_PIXELS).",
    )
