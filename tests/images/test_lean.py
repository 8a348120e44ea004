"""Both images are lean: the final stage holds what runs, not what built it (no uv, no
compiler, no uv cache, no build context, no apt package lists)."""

from __future__ import annotations

import pytest

from tests.images.conftest import run_locked_down

pytestmark = pytest.mark.e2e

_LOOK = (
    "for tool in uv gcc cc make; do command -v $tool; done; "
    "for path in /src /root/.cache /opt/venv-deps.list /delta /var/lib/apt/lists/*_Packages; do "
    "  [ -e $path ] && echo $path; done; true"
)


@pytest.mark.parametrize("image_fixture", ["runtime_image", "operator_image"])
def test_final_stage_carries_no_build_tools(
    image_fixture: str, request: pytest.FixtureRequest
) -> None:
    image: str = request.getfixturevalue(image_fixture)
    done = run_locked_down(image, "-c", _LOOK, entrypoint="/bin/sh")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], "build leftovers in the final image"
