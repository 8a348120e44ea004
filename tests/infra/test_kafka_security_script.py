"""kafka-security.sh: the SECURE listener is added to the broker's configuration without
touching its other listeners, with a CA that verifies the broker's certificate for
127.0.0.1."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts" / "infra"
LISTENERS = (
    "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,POD://127.0.0.1:19094\n"
    "advertised.listeners=PLAINTEXT://127.0.0.1:19092,POD://kafka.kafka.svc:9092\n"
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,POD:PLAINTEXT\n"
    "inter.broker.listener.name=PLAINTEXT\n"
)


def test_configure_adds_the_secure_listener_and_keeps_the_others(tmp_path: Path) -> None:
    props = tmp_path / "server.properties"
    props.write_text(LISTENERS, encoding="utf-8")
    env = {**os.environ, "OCR_LOCAL_DIR": str(tmp_path), "OCR_CACHE_DIR": str(tmp_path / "c")}
    # Port 1 stands in for 19095, which the running shared broker holds.
    script = (
        f". {SCRIPTS}/lib.sh; . {SCRIPTS}/kafka-security.sh; ensure_dirs; "
        f"KAFKA_SECURE_PORT=1; kafka_security_configure {props}"
    )
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, check=True)
    lines = props.read_text(encoding="utf-8").splitlines()
    assert lines[:4] == [
        "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,"
        "POD://127.0.0.1:19094,SECURE://127.0.0.1:1",
        "advertised.listeners=PLAINTEXT://127.0.0.1:19092,POD://kafka.kafka.svc:9092,"
        "SECURE://127.0.0.1:1",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "POD:PLAINTEXT,SECURE:SASL_SSL",
        "inter.broker.listener.name=PLAINTEXT",
    ]
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in lines
    security = tmp_path / "kafka" / "security"
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", security / "ca.pem", "-verify_ip", "127.0.0.1",
         security / "broker.crt"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert (security / "scram-password").stat().st_mode & 0o077 == 0
