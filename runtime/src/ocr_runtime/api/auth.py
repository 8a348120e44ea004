"""Optional API keys: `Authorization: Bearer <key>`, checked against SHA-256 digests so the
configuration never holds a usable key."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from fastapi import Request

from ocr_runtime.api.errors import Unauthorized


class ApiKeyCheck:
    def __init__(self, key_hashes: Sequence[str]) -> None:
        self._digests = [bytes.fromhex(h) for h in key_hashes]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    async def __call__(self, request: Request) -> str:  # async: no threadpool hop
        """The caller's identity, which scopes its idempotency keys: a prefix of the
        verified key's digest, or the client's address when keys are off."""
        if not self._digests:
            return f"client:{request.client.host if request.client else 'unknown'}"
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("send Authorization: Bearer <api key>")
        digest = hashlib.sha256(key.strip().encode()).digest()
        # Compare against every digest, constant time each: no early exit leaks which matched.
        matched = False
        for expected in self._digests:
            matched |= hmac.compare_digest(digest, expected)
        if not matched:
            raise Unauthorized("invalid API key")
        return f"key:{digest.hex()[:16]}"
