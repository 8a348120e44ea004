"""The operations documents link only to files that exist, and scripts/tools.sh is idempotent:
a second call reuses the cached binaries (nothing rebuilt) and they report the pinned versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.packaging.conftest import REPO_ROOT, TOOLS, run

DOCUMENTS = ["ARCHITECTURE.md", "RUNBOOK.md", "CHANGELOG.md", "observability/README.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


@pytest.mark.parametrize("document", DOCUMENTS)
def test_relative_links_resolve(document: str) -> None:
    path = REPO_ROOT / document
    links = [m.group(1) for m in LINK.finditer(path.read_text())]
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    missing = [link for link in local if not (path.parent / link).exists()]
    assert not missing, f"{document} links to missing files: {missing}"


def test_architecture_links_the_component_documents() -> None:
    text = (REPO_ROOT / "ARCHITECTURE.md").read_text()
    for doc in ("docs/data-plane.md", "docs/operator.md", "docs/advisor.md", "docs/metrics.md"):
        assert f"({doc})" in text


def test_runbook_anchors_referenced_inside_it_exist() -> None:
    text = (REPO_ROOT / "RUNBOOK.md").read_text()
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', text))
    used = set(re.findall(r"\(#([a-z0-9-]+)\)", text))
    assert used <= anchors, used - anchors


def test_tools_are_cached_and_report_their_versions(helm: Path, promtool: Path) -> None:
    again = run([TOOLS, "all"])
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == [str(helm), str(promtool)]
    assert "building" not in again.stderr and "fetching" not in again.stderr
    version = run([helm, "version", "--template", "{{.Version}}"])
    assert version.stdout == "v3.17.4"
    # promtool-<version>/bin/promtool: the folder names the version the binary reports.
    cached_version = promtool.parent.parent.name.removeprefix("promtool-")
    assert f"version {cached_version}" in run([promtool, "--version"]).stdout


def test_helm_assumes_the_kubernetes_version_it_was_built_for(helm: Path, tmp_path: Path) -> None:
    # Without tools.sh's ldflags helm falls back to Kubernetes 1.20 for templates and lint,
    # which the chart's kubeVersion (>=1.29) would refuse.
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "v.yaml").write_text(
        "kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    done = run([helm, "template", "x", chart])
    assert done.returncode == 0, done.stderr
    assert 'kube: "v1.32.0"' in done.stdout
