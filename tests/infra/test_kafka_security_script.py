"""kafka-security.sh: the SECURE and PODSECURE listeners are added to the broker's
configuration without touching its other listeners, with a CA that verifies the broker's
certificate for 127.0.0.1 and for the kafka Service's cluster names; a changed name list
signs the broker's certificate again under the same CA."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts" / "infra"
LISTENERS = (
    "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,POD://127.0.0.1:19094\n"
    "advertised.listeners=PLAINTEXT://127.0.0.1:19092,POD://kafka.kafka.svc:9092\n"
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,POD:PLAINTEXT\n"
    "inter.broker.listener.name=PLAINTEXT\n"
)


def _configure(local: Path, props: Path, before: str = "") -> None:
    env = {**os.environ, "OCR_LOCAL_DIR": str(local), "OCR_CACHE_DIR": str(local / "c")}
    # Ports 1 and 2 stand in for 19095 and 19096, which the running shared broker holds.
    script = (
        f". {SCRIPTS}/lib.sh; . {SCRIPTS}/kafka-security.sh; ensure_dirs; {before}"
        f"KAFKA_SECURE_PORT=1; KAFKA_POD_SECURE_PORT=2; kafka_security_configure {props}"
    )
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, check=True)


def _verify(security: Path, *check: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", security / "ca.pem", *check, security / "broker.crt"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_configure_adds_the_secure_listeners_and_keeps_the_others(tmp_path: Path) -> None:
    props = tmp_path / "server.properties"
    props.write_text(LISTENERS, encoding="utf-8")
    _configure(tmp_path, props)
    lines = props.read_text(encoding="utf-8").splitlines()
    assert lines[:4] == [
        "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,"
        "POD://127.0.0.1:19094,SECURE://127.0.0.1:1,PODSECURE://127.0.0.1:2",
        "advertised.listeners=PLAINTEXT://127.0.0.1:19092,POD://kafka.kafka.svc:9092,"
        "SECURE://127.0.0.1:1,PODSECURE://kafka.kafka.svc:9093",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "POD:PLAINTEXT,SECURE:SASL_SSL,PODSECURE:SASL_SSL",
        "inter.broker.listener.name=PLAINTEXT",
    ]
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in lines
    for listener in ("secure", "podsecure"):
        assert f"listener.name.{listener}.ssl.keystore.type=PEM" in lines
        assert (
            f"listener.name.{listener}.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ) in lines
    security = tmp_path / "kafka" / "security"
    verified = _verify(security, "-verify_ip", "127.0.0.1")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert (security / "scram-password").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("name", ["kafka.kafka.svc", "kafka.kafka.svc.cluster.local"])
def test_the_broker_certificate_names_the_kafka_service(tmp_path: Path, name: str) -> None:
    props = tmp_path / "server.properties"
    props.write_text(LISTENERS, encoding="utf-8")
    _configure(tmp_path, props)
    verified = _verify(tmp_path / "kafka" / "security", "-verify_hostname", name)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_changed_name_list_signs_the_broker_again_under_the_same_ca(tmp_path: Path) -> None:
    security = tmp_path / "kafka" / "security"
    props = tmp_path / "server.properties"
    props.write_text(LISTENERS, encoding="utf-8")
    # A broker certificate made for loopback only, as before the pods' listener existed.
    _configure(tmp_path, props, before='KAFKA_BROKER_SAN="IP:127.0.0.1,DNS:localhost"; ')
    assert _verify(security, "-verify_hostname", "kafka.kafka.svc").returncode != 0
    kept = {name: (security / name).read_bytes() for name in ("ca.pem", "scram-password")}
    props.write_text(LISTENERS, encoding="utf-8")
    _configure(tmp_path, props)
    verified = _verify(security, "-verify_hostname", "kafka.kafka.svc")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert {name: (security / name).read_bytes() for name in kept} == kept
    keystore = (security / "broker-keystore.pem").read_text(encoding="utf-8")
    assert (security / "broker.crt").read_text(encoding="utf-8").strip() in keystore
