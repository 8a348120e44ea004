"""The API key Secret the operator generates when `spec.api.auth` names none.

Pure: the caller draws the key (`new_api_key`) and the apply layer creates the Secret once
(a create, never an apply: an existing Secret, the operator's or anyone's, is never
overwritten, and the operator never reads Secrets).
"""

from __future__ import annotations

import hashlib
import secrets

from ocr_operator.model import OCRServingSpec
from ocr_operator.model.api import GENERATED_HASHES, GENERATED_KEY
from ocr_operator.model.enums import AuthMode
from ocr_operator.render._manifest import Instance, Kind, Manifest, make
from ocr_operator.render.env import generated_api_key_secret


def new_api_key() -> str:
    """A random API key (256 bits, URL-safe: it travels in an HTTP header)."""
    return secrets.token_urlsafe(32)


def api_key_digest(key: str) -> str:
    """What the runtime compares against (OCR_API_KEY_HASHES): SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_secret(spec: OCRServingSpec, instance: Instance, key: str) -> Manifest | None:
    """The `<name>-api-key` Secret holding `key` and its digest; None when the spec names
    its own Secret or turns auth off."""
    auth = spec.api.auth
    if auth.mode is AuthMode.NONE or auth.api_key_secret_ref is not None:
        return None
    manifest = make(
        Kind.SECRET,
        generated_api_key_secret(instance.name),
        instance,
        {GENERATED_KEY: key, GENERATED_HASHES: api_key_digest(key)},
        top_level="stringData",
    )
    manifest.body["type"] = "Opaque"
    return manifest
