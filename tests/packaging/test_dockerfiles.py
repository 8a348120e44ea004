"""Static properties of the two Dockerfiles and .dockerignore (no Docker engine here): built
from the lock, non-root, engine build argument mapped to real extras, models warmed offline,
and a build context that carries what the Dockerfiles copy and nothing secret."""

from __future__ import annotations

import fnmatch
import itertools
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tests.packaging.conftest import REPO_ROOT

RUNTIME = REPO_ROOT / "Dockerfile.runtime"
OPERATOR = REPO_ROOT / "Dockerfile.operator"
WARM_SCRIPT = REPO_ROOT / "scripts" / "images" / "warm_engine.py"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined; heredoc bodies dropped."""
    out: list[tuple[str, str]] = []
    lines = iter(path.read_text().splitlines())
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        heredoc = re.search(r"<<-?'?(\w+)'?", rest)
        if heredoc:
            for body in lines:
                if body.strip() == heredoc.group(1):
                    break
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def runtime_extras() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "runtime" / "pyproject.toml").read_text())
    return set(project["project"]["optional-dependencies"])


def uv_syncs(path: Path) -> list[list[str]]:
    commands = []
    for keyword, rest in instructions(path):
        if keyword == "RUN" and "uv sync" in rest:
            words = shlex.split(rest[rest.index("uv sync") :])
            commands.append(words)
    return commands


@pytest.mark.parametrize("path", [RUNTIME, OPERATOR], ids=lambda p: p.name)
def test_final_stage_runs_as_a_non_root_user(path: Path) -> None:
    final = stages(path)[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, f"{path.name}: the final stage sets no USER (would run as root)"
    user = users[-1].split(":")[0]
    assert user not in {"0", "root"}
    assert user.isdigit(), "a numeric uid lets runAsNonRoot verify it without /etc/passwd"
    # Nothing after USER switches back or installs packages as root.
    after = final[[k for k, _ in final].index("USER") :]
    assert not [r for k, r in after if k == "RUN"], "RUN after USER"


@pytest.mark.parametrize(
    ("path", "package"),
    [(RUNTIME, "ocr-runtime"), (OPERATOR, "ocr-operator")],
    ids=["runtime", "operator"],
)
def test_dependencies_come_from_the_lock_only(path: Path, package: str) -> None:
    syncs = uv_syncs(path)
    assert len(syncs) == 2, "a dependency layer, then the project itself"
    for words in syncs:
        assert "--frozen" in words, f"{shlex.join(words)}: not installed from uv.lock"
        assert "--no-dev" in words
        assert words[words.index("--package") + 1] == package
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1], "the image must not depend on the source tree"
    copies = [rest for keyword, rest in instructions(path) if keyword == "COPY"]
    assert any("uv.lock" in c for c in copies)
    assert "pip install" not in path.read_text()


def test_runtime_engine_argument_maps_to_existing_extras() -> None:
    text = RUNTIME.read_text()
    extras = runtime_extras()
    assert extras == {"onnx", "onnx-gpu", "paddle", "paddle-gpu"}
    default = re.findall(r"^ARG ENGINE=(\S+)$", text, flags=re.MULTILINE)
    assert default and set(default) <= extras
    # The guard that rejects an unknown ENGINE lists exactly the extras.
    guard = re.search(r'case "\$ENGINE" in ([^)]+)\)', text)
    assert guard is not None
    assert set(guard.group(1).split("|")) == extras
    # Documented build commands use real extras only.
    documented = set(re.findall(r"--build-arg ENGINE=(\S+)", text))
    assert documented == extras
    for words in uv_syncs(RUNTIME):
        assert words[words.index("--extra") + 1] == "$ENGINE"


def test_operator_image_carries_no_runtime_dependencies() -> None:
    text = OPERATOR.read_text()
    for words in uv_syncs(OPERATOR):
        assert "--extra" not in words and "--all-extras" not in words
    assert "runtime/src" not in text
    assert "ENGINE" not in text


def test_runtime_models_are_warmed_offline_at_build_time() -> None:
    _uv, _deps, build, runtime = stages(RUNTIME)
    assert ("COPY", f"{WARM_SCRIPT.relative_to(REPO_ROOT)} /src/warm_engine.py") in build
    assert ("RUN", '/opt/venv/bin/python /src/warm_engine.py "$ENGINE"') in build
    body = WARM_SCRIPT.read_text()
    # The runtime's own engine factory does the loading (pyclipper-before-paddle included),
    # after Python's sockets are cut off: a download attempt fails the build.
    assert "build_engine(" in body and "engine.load()" in body
    main = body[body.index('if __name__ == "__main__":') :]
    assert main.index("forbid_network()") < main.index("warm(")
    # The warm-up runs in the build stage, whose additions to the venv the runtime stage copies.
    assert ("COPY", "--from=build /delta/ /") in runtime


@pytest.mark.parametrize("path", [RUNTIME, OPERATOR], ids=lambda p: p.name)
def test_dependencies_are_a_layer_of_their_own(path: Path) -> None:
    """A source-only change rebuilds the build stage, not the deps stage: the final stage takes
    the venv from deps and only the files our package adds from build."""
    _uv, deps, build, runtime = stages(path)
    assert deps[0][1].endswith(" AS deps") and build[0] == ("FROM", "deps AS build")
    deps_copies = [rest.split()[0] for keyword, rest in deps if keyword == "COPY"]
    assert not [c for c in deps_copies if c.endswith("/src")], "sources in the deps stage"
    assert sum("uv sync" in rest for keyword, rest in deps if keyword == "RUN") == 1
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == [
        "--from=deps /opt/python /opt/python",
        "--from=deps /opt/venv /opt/venv",
        "--from=build /delta/ /",
    ]
    assert "/opt/venv-deps.list" in " ".join(rest for _, rest in deps)


@pytest.mark.parametrize("path", [RUNTIME, OPERATOR], ids=lambda p: p.name)
def test_buildah_from_debian_can_build_it(path: Path) -> None:
    """buildah 1.28 (Debian bookworm's, which `make images` uses) knows no heredocs and no
    RUN flag but --mount; BuildKit reads the same file."""
    assert "<<" not in path.read_text()
    runs = [rest.split() for keyword, rest in instructions(path) if keyword == "RUN"]
    for words in runs:
        flags = [w.split("=")[0] for w in itertools.takewhile(lambda w: w.startswith("--"), words)]
        assert set(flags) <= {"--mount"}, shlex.join(words)
    assert any(words[0].startswith("--mount=") for words in runs)


@pytest.mark.parametrize("path", [RUNTIME, OPERATOR], ids=lambda p: p.name)
def test_base_images_are_pinned(path: Path) -> None:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", path.read_text(), flags=re.MULTILINE))
    images = [v for k, v in args.items() if k.endswith(("_IMAGE", "BASE"))]
    assert images
    for image in images:
        assert ":" in image and not image.endswith(":latest"), image


@pytest.mark.parametrize("path", [RUNTIME, OPERATOR], ids=lambda p: p.name)
def test_build_context_holds_what_is_copied_and_no_local_state(path: Path) -> None:
    patterns = [
        p.strip()
        for p in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore should be an allow-list"
    allowed = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]

    def included(rel: str) -> bool:
        return any(rel == a or rel.startswith(a + "/") or fnmatch.fnmatch(rel, a) for a in allowed)

    for keyword, rest in instructions(path):
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        *sources, _dest = rest.split()
        for source in sources:
            assert included(source), f"{source} is copied but excluded by .dockerignore"
            assert (REPO_ROOT / source).exists(), source
    for secret in (".local/env", ".local/kubeconfig", ".venv/bin/python", ".git/config"):
        assert not included(secret), secret


def test_runtime_image_fits_the_pods_the_operator_renders() -> None:
    import yaml  # noqa: PLC0415

    final = stages(RUNTIME)[-1]
    uid = next(rest for keyword, rest in final if keyword == "USER").split(":")[0]
    entrypoint = next(rest for keyword, rest in final if keyword == "ENTRYPOINT")
    golden = REPO_ROOT / "tests" / "operator" / "golden" / "writer.yaml"
    deployments = [
        d for d in yaml.safe_load_all(golden.read_text()) if d and d["kind"] == "Deployment"
    ]
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert str(pod["securityContext"]["runAsUser"]) == uid
        (container,) = pod["containers"]
        assert container["command"] == ["ocr-runtime"] and entrypoint == '["ocr-runtime"]'
        # The read-only root filesystem leaves /tmp as the only writable place.
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
