"""The README's operator section, followed to the letter: the commands between its
`golden-path` markers run as one bash script on the local cluster and print OCR text.

Runs after the golden path (same namespace and stack name) and leaves the stack running, as a
person following the README would; the scale-to-zero test, next, removes it.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.golden._local import OPERATOR_IMAGE, RUNTIME_IMAGE, require_images, require_real_node
from tests.operator._examples import ROOT

pytestmark = pytest.mark.e2e

BEGIN, END = "<!-- golden-path:begin -->", "<!-- golden-path:end -->"


def readme_commands() -> str:
    text = (ROOT / "README.md").read_text()
    if BEGIN not in text or END not in text:
        raise AssertionError(
            f"README.md has no operator walkthrough between {BEGIN} and {END}: the section "
            "this test follows is missing"
        )
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    found = re.search(r"```(?:sh|bash|console)?\n(.*?)```", block, re.DOTALL)
    if found is None:
        raise AssertionError("the README's golden-path block holds no fenced shell commands")
    return found.group(1)


def test_readme_operator_section_returns_ocr_text(kubeconfig: object) -> None:
    commands = readme_commands()
    require_real_node()
    require_images(RUNTIME_IMAGE, OPERATOR_IMAGE)
    # The background port-forward is the script's child: a trap ends it with the script.
    script = f"set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{commands}"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={**os.environ, "KUBECONFIG": str(ROOT / ".local" / "kubeconfig")},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert '"status":"succeeded"' in done.stdout.replace(" ", ""), output[-4000:]
    assert "invoice total 4821" in done.stdout, output[-4000:]
    assert "payment due Seoul" in done.stdout, output[-4000:]
    assert re.search(r"^standard\s+Standard\s+Standard\s+True", done.stdout, re.M), output[-4000:]
