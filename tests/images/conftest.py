"""Fixtures of the image checks: the images `make images` builds, run with podman.

Nothing here builds an image (a cold build takes many minutes): a missing image or a missing
podman fails the test with the command that makes it. Every container runs the way the
operator's pods do: a non-root user, a read-only root filesystem, no capabilities, and no
network at all (`--network=none`), so whatever an image needs must already be inside it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

import pytest

RUNTIME_IMAGE = "localhost/ocr-runtime:dev-onnx"
OPERATOR_IMAGE = "localhost/ocr-operator:dev"
RUNTIME_UID = 10001
OPERATOR_UID = 65532
BUILD_HINT = "build it with `make images` (scripts/images.sh build)"

# The hardened container: what a pod with runAsNonRoot, readOnlyRootFilesystem, all
# capabilities dropped and no network amounts to. /tmp is the only writable place.
LOCKED_DOWN = (
    "--network=none",
    "--read-only",
    "--read-only-tmpfs=false",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--tmpfs=/tmp:rw,nosuid,nodev,size=64m",
)


def podman(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def podman_exec(
    name: str, *command: str, stdin: bytes, timeout: float
) -> subprocess.CompletedProcess[bytes]:
    """`podman exec -i NAME COMMAND...` with STDIN as the command's input."""
    return subprocess.run(
        ["podman", "exec", "-i", name, *command],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def run_locked_down(
    image: str, *command: str, entrypoint: str | None = None, extra: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """`podman run --rm` of IMAGE with the hardened options; COMMAND replaces the CMD."""
    prefix = [f"--entrypoint={entrypoint}"] if entrypoint else []
    return podman("run", "--rm", *LOCKED_DOWN, *extra, *prefix, image, *command)


def _require_image(tag: str) -> str:
    if shutil.which("podman") is None:
        pytest.fail(f"podman is not installed: {BUILD_HINT}, which installs it")
    if podman("image", "exists", tag, timeout=60).returncode != 0:
        pytest.fail(f"image {tag} does not exist: {BUILD_HINT}")
    return tag


@pytest.fixture(scope="session")
def runtime_image() -> str:
    return _require_image(RUNTIME_IMAGE)


@pytest.fixture(scope="session")
def operator_image() -> str:
    return _require_image(OPERATOR_IMAGE)
