"""The MLflow model registry, through its REST API: an alias (or a version) to a concrete
version and the location of its files.

`GET /api/2.0/mlflow/registered-models/alias` resolves an alias, `.../model-versions/get`
checks a pinned version, `.../model-versions/get-download-uri` says where the files are (an
`mlflow-artifacts:/` location when the server proxies artifacts, which the workers' init
container downloads through the same server).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from ocr_operator.model.model_source import MlflowModelRef, ModelSourceKind, ResolvedModel
from ocr_operator.ports import ModelNotFoundError, RegistryUnavailableError

_API = "/api/2.0/mlflow"
# MLflow's error codes for a name, version or alias it does not know.
_READY = "READY"
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


class MlflowRegistry:
    """`ModelRegistry` on MLflow's REST API (one short-lived HTTP session per resolution)."""

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def resolve(self, ref: MlflowModelRef) -> ResolvedModel:
        name, version, alias = ref.reference()
        base = ref.tracking_uri.rstrip("/") + _API
        async with aiohttp.ClientSession(timeout=self._timeout) as http:
            if alias is not None:
                found = await _get(http, f"{base}/registered-models/alias", name=name, alias=alias)
                what = f"alias {alias} of registered model {name}"
            else:
                found = await _get(http, f"{base}/model-versions/get", name=name, version=version)
                what = f"version {version} of registered model {name}"
            if found is None:
                raise ModelNotFoundError(f"MLflow at {ref.tracking_uri} has no {what}")
            version = str(found["model_version"]["version"])
            state = found["model_version"].get("status", _READY)
            if state != _READY:  # PENDING_REGISTRATION: its files are still being copied
                raise RegistryUnavailableError(f"version {version} of {name} is {state}")
            answer = await _get(
                http, f"{base}/model-versions/get-download-uri", name=name, version=version
            )
            location = str((answer or {}).get("artifact_uri") or "")
            if location.startswith("runs:/"):
                location = await _run_location(http, base, location)
        if not location:
            raise ModelNotFoundError(
                f"MLflow at {ref.tracking_uri} has no files for version {version} of {name}"
            )
        return ResolvedModel(ModelSourceKind.MLFLOW, name, version, location, ref.tracking_uri)


async def _run_location(http: aiohttp.ClientSession, base: str, location: str) -> str:
    """runs:/<run id>/<path> as the run's artifact location (mlflow-artifacts:/...)."""
    run_id, _, path = location.removeprefix("runs:/").partition("/")
    run = await _get(http, f"{base}/runs/get", run_id=run_id)
    if run is None:
        return ""
    root = str(run["run"]["info"]["artifact_uri"]).rstrip("/")
    return f"{root}/{path}" if path else root


async def _get(http: aiohttp.ClientSession, url: str, **params: str | None) -> Any:
    """The JSON answer; None when MLflow says the object does not exist."""
    query = {k: v for k, v in params.items() if v is not None}
    try:
        async with http.get(url, params=query) as response:
            body = await response.json(content_type=None)
            if response.status == 200:
                return body
            code = body.get("error_code", "") if isinstance(body, dict) else ""
            if response.status in (400, 404) and code in _NOT_FOUND:
                return None
            message = body.get("message", "") if isinstance(body, dict) else ""
            raise RegistryUnavailableError(
                f"MLflow {url}: HTTP {response.status} {code} {message}".rstrip()
            )
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise RegistryUnavailableError(f"MLflow {url}: {error or type(error).__name__}") from error
