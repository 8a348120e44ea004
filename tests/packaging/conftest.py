"""Fixtures of the packaging tests: the helm and promtool binaries (built or fetched once by
scripts/tools.sh and cached per version) and helpers to render the chart."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "ocr-operator"
TOOLS = REPO_ROOT / "scripts" / "tools.sh"

Manifest = dict[str, Any]
Renderer = Callable[..., list[Manifest]]


def _tool(name: str) -> Path:
    # A cold helm build compiles for a few minutes; later calls return the cached path.
    done = subprocess.run(
        [str(TOOLS), name], capture_output=True, text=True, timeout=1200, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/tools.sh {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_file(), f"scripts/tools.sh {name} printed {path}, which does not exist"
    return path


@pytest.fixture(scope="session")
def helm() -> Path:
    return _tool("helm")


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _tool("promtool")


def run(cmd: Sequence[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Runs a command and returns its result (no check: callers assert on it)."""
    kwargs.setdefault("timeout", 300)
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, check=False, **kwargs
    )


def render_chart(
    helm: Path,
    *set_args: str,
    namespace: str = "ocr-system",
    release: str = "ocr-operator",
    include_crds: bool = False,
) -> str:
    """`helm template` of the chart, as YAML text; fails the test when rendering fails."""
    cmd: list[str | Path] = [helm, "template", release, CHART_DIR, "--namespace", namespace]
    if include_crds:
        cmd.append("--include-crds")
    for value in set_args:
        cmd += ["--set", value]
    done = run(cmd)
    assert done.returncode == 0, f"helm template failed:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def render(helm: Path) -> Renderer:
    """render(*--set values, namespace=..., include_crds=...) -> list of manifests."""

    def _render(*set_args: str, **kwargs: Any) -> list[Manifest]:
        text = render_chart(helm, *set_args, **kwargs)
        return [d for d in yaml.safe_load_all(text) if d]

    return _render


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.get("kind") == kind]
