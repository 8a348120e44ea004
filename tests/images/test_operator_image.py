"""The operator image, run locked down (non-root, read-only root, no network): its entry
point starts, and it carries the operator and nothing of the data plane."""

from __future__ import annotations

import json

import pytest

from tests.images.conftest import OPERATOR_UID, podman, run_locked_down

pytestmark = pytest.mark.e2e

_PROBE = """
import importlib.util, json, os
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "present": [m for m in ("ocr_operator", "kopf", "kubernetes", "ocr_runtime", "onnxruntime",
                            "rapidocr", "paddle") if importlib.util.find_spec(m) is not None],
}))
"""


def test_help_runs_offline_as_the_non_root_user(operator_image: str) -> None:
    done = run_locked_down(operator_image, "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run" in done.stdout
    entrypoint = podman(
        "image", "inspect", "--format", "{{json .Config.Entrypoint}}", operator_image
    )
    assert json.loads(entrypoint.stdout) == ["ocr-operator"]


def test_runs_as_a_numeric_non_root_user_without_the_data_plane(operator_image: str) -> None:
    done = run_locked_down(operator_image, "-c", _PROBE, entrypoint="python")
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert (seen["uid"], seen["gid"]) == (OPERATOR_UID, OPERATOR_UID)
    assert seen["present"] == ["ocr_operator", "kopf"]
    user = podman("image", "inspect", "--format", "{{.Config.User}}", operator_image)
    assert user.stdout.strip() == f"{OPERATOR_UID}:{OPERATOR_UID}"
