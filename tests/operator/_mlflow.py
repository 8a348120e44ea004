"""The REST calls a model build step makes to an MLflow registry (tests of the model source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import onnxruntime

from ocr_runtime.adapters.engines import write_manifest
from tests.engines.model_dirs import onnx_model_dir


class Registry:
    """The REST calls a model build step makes: a run holding the files, a version of it."""

    def __init__(self, url: str, model: str) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=120)
        self.model = model
        experiment = self._post("experiments/create", name=f"{model}-builds")
        self.experiment = experiment["experiment_id"]
        self._post("registered-models/create", name=model)

    def _post(self, path: str, **body: Any) -> Any:
        response = self.http.post(f"/api/2.0/mlflow/{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def publish(self, folder: Path, *, run_uri: bool = False) -> tuple[str, str]:
        """(version, artifact location) of a new version holding `folder`'s files; `run_uri`:
        registered as `runs:/<run id>/model`, as MLflow's own clients often do."""
        run = self._post("runs/create", experiment_id=self.experiment)["run"]["info"]
        location = f"{run['artifact_uri']}/model"
        route = "/api/2.0/mlflow-artifacts/artifacts/" + location.removeprefix("mlflow-artifacts:/")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = path.relative_to(folder).as_posix()
            put = self.http.put(f"{route}/{relative}", content=path.read_bytes())
            assert put.status_code == 200, put.text
        source = f"runs:/{run['run_id']}/model" if run_uri else location
        created = self._post(
            "model-versions/create", name=self.model, source=source, run_id=run["run_id"]
        )
        return str(created["model_version"]["version"]), location

    def alias(self, alias: str, version: str) -> None:
        self._post("registered-models/alias", name=self.model, alias=alias, version=version)

    def close(self) -> None:
        self.http.request(
            "DELETE", "/api/2.0/mlflow/registered-models/delete", json={"name": self.model}
        )
        self._post("experiments/delete", experiment_id=self.experiment)
        self.http.close()


def model_versions(root: Path) -> tuple[Path, Path]:
    """Version 1: the wheel's models; version 2: the same with a capitals dictionary."""
    first = onnx_model_dir(root / "v1", cls=False, manifest=False)
    write_manifest(first, "invoices-ppocr", "1")
    second = onnx_model_dir(root / "v2", cls=False, manifest=False)
    session = onnxruntime.InferenceSession(str(second / "rec.onnx"))
    embedded = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    (second / "dict.txt").write_text("\n".join(ch.upper() for ch in embedded) + "\n")
    write_manifest(second, "invoices-ppocr", "2")
    return first, second
