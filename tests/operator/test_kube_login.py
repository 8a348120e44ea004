"""How the operator finds and authenticates to the apiserver (`kube_login`): the pod's service
account, else the kubeconfig; against the local apiserver, TLS verified with a CA and a
client certificate given inline, and a refused token read again."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from ocr_operator import kube_login
from ocr_operator.apply import KubeClient
from ocr_operator.ports import KubeError
from tests.conftest import LOCAL_DIR, kubeconfig_server_and_token

PKI = LOCAL_DIR / "k8s" / "pki"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        ),
        encoding="utf-8",
    )
    return path


def test_in_a_pod_the_service_account_and_the_service_address_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("sa-token\n", encoding="utf-8")
    (tmp_path / "ca.crt").write_text("unused", encoding="utf-8")
    monkeypatch.setattr(kube_login, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    info = kube_login.connection_info()
    assert info.server == "https://[fd00::1]:443"
    assert info.ca_path == str(tmp_path / "ca.crt")
    assert kube_login.authorization(info) == {"Authorization": "Bearer sa-token"}


def test_outside_a_pod_the_kubeconfig_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_login, "SERVICE_ACCOUNT", tmp_path)  # no token there
    config = _kubeconfig(
        tmp_path / "config",
        {"server": "https://10.0.0.1:6443", "insecure-skip-tls-verify": True},
        {"username": "ann", "password": "secret"},
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    info = kube_login.connection_info()
    assert info.server == "https://10.0.0.1:6443"
    basic = base64.b64encode(b"ann:secret").decode()
    assert kube_login.authorization(info) == {"Authorization": f"Basic {basic}"}


def test_no_service_account_and_no_kubeconfig_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_login, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(kopf.LoginError, match="KUBECONFIG"):
        kube_login.connection_info()


async def test_tls_verified_with_inline_ca_and_client_certificate(
    kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _token = kubeconfig_server_and_token(kubeconfig)
    config = _kubeconfig(
        tmp_path / "config",
        {"server": server, "certificate-authority-data": _b64(PKI / "ca.crt")},
        {
            # The apiserver's own kubelet client certificate: group system:masters.
            "client-certificate-data": _b64(PKI / "apiserver-kubelet-client.crt"),
            "client-key-data": _b64(PKI / "apiserver-kubelet-client.key"),
        },
    )
    monkeypatch.setattr(kube_login, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(config))
    kube = KubeClient.from_environment(threads=1)
    try:
        found = await kube.request("GET", "/api/v1/namespaces/kube-system")
    finally:
        kube.close()
    assert found["metadata"]["name"] == "kube-system"


async def test_a_refused_token_is_read_again_once(
    kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, token = kubeconfig_server_and_token(kubeconfig)
    cluster = {"server": server, "insecure-skip-tls-verify": True}
    config = _kubeconfig(tmp_path / "config", cluster, {"token": "expired"})
    monkeypatch.setattr(kube_login, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(config))
    kube = KubeClient.from_environment(threads=1)
    try:
        with pytest.raises(KubeError, match=r"^401"):
            await kube.request("GET", "/api/v1/namespaces/kube-system")
        _kubeconfig(config, cluster, {"token": token})  # the rotated token
        found = await kube.request("GET", "/api/v1/namespaces/kube-system")
    finally:
        kube.close()
    assert found["metadata"]["name"] == "kube-system"
