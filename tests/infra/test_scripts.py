"""The infra scripts' shared helpers: `.local/env` is merged, never clobbered."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT, read_local_env

LIB = REPO_ROOT / "scripts" / "infra" / "lib.sh"


def _bash(script: str, local_dir: Path) -> str:
    """Runs `script` with lib.sh sourced and .local at `local_dir`; returns its stdout."""
    env = {**os.environ, "OCR_LOCAL_DIR": str(local_dir), "OCR_CACHE_DIR": str(local_dir / "c")}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f". {LIB}; {script}"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_env_set_merges_keys_written_by_each_script(tmp_path: Path) -> None:
    _bash("env_set KUBECONFIG /k/config", tmp_path)  # cluster-up
    _bash("env_set OCR_REDIS_URL redis://a PROMETHEUS_URL http://p", tmp_path)  # infra-up
    _bash("env_set OCR_REDIS_URL redis://b", tmp_path)  # infra-up again
    assert read_local_env(tmp_path / "env") == {
        "KUBECONFIG": "/k/config",
        "OCR_REDIS_URL": "redis://b",
        "PROMETHEUS_URL": "http://p",
    }
    lines = (tmp_path / "env").read_text(encoding="utf-8").splitlines()
    assert all(line.startswith("export ") for line in lines)
    assert len(lines) == 3


def test_a_service_whose_shell_has_not_yet_exec_d_it_is_alive_but_not_yet_running(
    tmp_path: Path,
) -> None:
    """Just after `start_bg` the pid may still be the forked shell: a wait for the service
    asks `pid_alive` (true), a decision to start it asks `is_running` (false: another
    program), and neither holds once the pid is gone."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shell = subprocess.Popen(["sleep", "30"])
    try:
        (run_dir / "svc.pid").write_text(f"{shell.pid}\n", encoding="utf-8")
        (run_dir / "svc.comm").write_text("etcd\n", encoding="utf-8")
        probe = "pid_alive svc && echo alive; is_running svc && echo running; true"
        assert _bash(probe, tmp_path) == "alive"
    finally:
        shell.kill()
        shell.wait()
    assert _bash(probe, tmp_path) == ""


def test_started_in_env_reads_the_running_process_environment(tmp_path: Path) -> None:
    """A component reads GOGC only when it starts: one started without this script's value
    is stale, one started with it is not."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    service = subprocess.Popen(["sleep", "30"], env={**os.environ, "GOGC": "400"})
    try:
        (run_dir / "svc.pid").write_text(f"{service.pid}\n", encoding="utf-8")
        probe = (
            "started_in_env svc GOGC=400 && echo with; "
            "started_in_env svc GOGC=40 && echo prefix; "
            "started_in_env svc GOGC=100 && echo other; true"
        )
        assert _bash(probe, tmp_path) == "with"
    finally:
        service.kill()
        service.wait()
    assert _bash("started_in_env svc GOGC=400 && echo with; true", tmp_path) == ""
