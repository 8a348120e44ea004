"""Runs the runtime image's build steps outside Docker (there is no engine here): the
context that .dockerignore lets through, the two `uv sync` commands of Dockerfile.runtime,
then its warm-up script with the network switched off where the kernel allows it. Proves
the lock installs the default engine and that its models load without any download."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from tests.packaging.conftest import REPO_ROOT
from tests.packaging.test_dockerfiles import OPERATOR, RUNTIME, WARM_SCRIPT, stages, uv_syncs

ENGINE = "onnx"
DEPS_STAGE, BUILD_STAGE = 1, 2  # after the uv stage


def _offline_prefix() -> list[str]:
    """`unshare -n` (root) or `unshare -rn` (user namespace): a process with no network."""
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        if (
            shutil.which(prefix[0])
            and subprocess.run([*prefix, "true"], capture_output=True, check=False).returncode == 0
        ):
            return prefix
    return []


def _copy_stage(dockerfile: Path, stage: int, src: Path) -> None:
    """Put what one stage's COPY instructions copy from the context into `src` (the
    Dockerfiles' WORKDIR /src), so the steps run on exactly what the image build sees."""
    for keyword, rest in stages(dockerfile)[stage]:
        if keyword != "COPY" or rest.startswith("--"):
            continue
        *sources, dest = rest.split()
        for source in sources:
            target = src / dest.removeprefix("/src/")
            if dest.endswith("/"):
                target = target / Path(source).name
            target.parent.mkdir(parents=True, exist_ok=True)
            origin = REPO_ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, target)


def _context(tmp: Path, dockerfile: Path) -> Path:
    """The build directory after the dependency stage's copies."""
    src = tmp / "src"
    _copy_stage(dockerfile, DEPS_STAGE, src)
    return src


def _installed(venv: Path) -> set[str]:
    site = next(venv.glob("lib/python3.11/site-packages"))
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def _sync(words: list[str], src: Path, venv: Path) -> None:
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_LINK_MODE": "copy"}
    env.pop("VIRTUAL_ENV", None)
    cmd = [w.replace("$ENGINE", ENGINE) for w in words]
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "ensure-uv.sh"), *cmd[1:]],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{shlex.join(cmd)} failed:\n{done.stderr[-3000:]}"


def test_runtime_image_steps_install_and_warm_offline(tmp_path: Path) -> None:
    src = _context(tmp_path, RUNTIME)
    venv = tmp_path / "venv"
    deps, project = uv_syncs(RUNTIME)
    _sync(deps, src, venv)
    assert not (venv / "bin" / "ocr-runtime").exists(), "first layer must not hold our code"
    _copy_stage(RUNTIME, BUILD_STAGE, src)
    _sync(project, src, venv)
    assert (venv / "bin" / "ocr-runtime").is_file()
    # Non-editable: the installed package must not point back into the build context.
    assert not list(venv.glob("lib/python3.11/site-packages/*ocr_*.pth"))
    # Seed 004: the runtime image carries no operator dependency, and one engine only.
    installed = _installed(venv)
    assert {"fastapi", "onnxruntime", "rapidocr", "ocr_contract"} <= installed
    assert not installed & {"kopf", "kubernetes", "ocr_operator", "paddlepaddle", "paddleocr"}

    done = subprocess.run(
        [*_offline_prefix(), str(venv / "bin" / "python"), str(WARM_SCRIPT), ENGINE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"engine {ENGINE}: models present and loadable offline" in done.stdout


def test_operator_image_steps_install_the_operator_only(tmp_path: Path) -> None:
    src = _context(tmp_path, OPERATOR)
    venv = tmp_path / "venv"
    deps, project = uv_syncs(OPERATOR)
    _sync(deps, src, venv)
    _copy_stage(OPERATOR, BUILD_STAGE, src)
    _sync(project, src, venv)
    installed = _installed(venv)
    assert {"kopf", "urllib3", "ocr_operator", "ocr_contract"} <= installed
    # Non-editable: the installed packages must not point back into the build context.
    assert not list(venv.glob("lib/python3.11/site-packages/*ocr_*.pth"))
    runtime = {"fastapi", "onnxruntime", "rapidocr", "paddlepaddle", "ocr_runtime"}
    assert not installed & (runtime | {"kubernetes"})  # its own urllib3 transport instead
    done = subprocess.run(
        [*_offline_prefix(), str(venv / "bin" / "ocr-operator"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run" in done.stdout
