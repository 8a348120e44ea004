"""The API key step of reconcile: the generated API key Secret, created before the API that
reads it. An existing Secret of that name (a rotated key, or one a person put there) is left
as it is; the create is repeated blind every few minutes, a no-op unless someone deleted it."""

from __future__ import annotations

import time

from ocr_operator.children import ReconcileError
from ocr_operator.model import OCRServingSpec, Reason
from ocr_operator.ports import KubeApi, KubeError, Owner
from ocr_operator.render import Instance, api_key_secret, new_api_key

# How often a generated API key Secret that exists is created again.
API_KEY_RECHECK_SECONDS = 300.0


async def ensure_api_key(
    kube: KubeApi,
    owner: Owner,
    spec: OCRServingSpec,
    instance: Instance,
    *,
    seen: dict[str, float],
    backoff: float,
) -> None:
    """`seen` maps a resource's uid to when its Secret was last created (monotonic)."""
    manifest = api_key_secret(spec, instance, new_api_key())
    if manifest is None:
        return
    last = seen.get(owner.uid)
    if last is not None and time.monotonic() - last < API_KEY_RECHECK_SECONDS:
        return
    try:
        await kube.create(manifest, owner)
        seen[owner.uid] = time.monotonic()
    except KubeError as error:
        hint = ""
        if error.status == 403:
            hint = " (the operator may not create Secrets here: name one in spec.api.auth."
            hint += "apiKeySecretRef)"
        raise ReconcileError(
            Reason.API_KEY_UNAVAILABLE,
            f"create Secret {manifest.name}: {error.message}{hint}",
            backoff,
        ) from error
