"""Where the apiserver is and how to authenticate to it, for kopf's watches and the
operator's own calls alike: the pod's service account inside a cluster (found as client-go
finds it), else the current kubeconfig (kopf's reader: token, client certificate, basic
auth; no exec plugins). Read again when the apiserver refuses the token (a projected service
account token is rotated by the kubelet).

Not the official kubernetes client: importing it costs the process about 27 MiB of models
it never uses.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from pathlib import Path

import kopf
import urllib3

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def connection_info() -> kopf.ConnectionInfo:
    """The service account when running in a pod, else the current kubeconfig."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    token = SERVICE_ACCOUNT / "token"
    if host and port and token.exists():
        ca = SERVICE_ACCOUNT / "ca.crt"
        host = f"[{host}]" if ":" in host else host  # an IPv6 service address
        return kopf.ConnectionInfo(
            server=f"https://{host}:{port}",
            ca_path=str(ca) if ca.exists() else None,
            token=token.read_text(encoding="utf-8").strip() or None,
        )
    info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    if info is None:
        raise kopf.LoginError("no service account token and no kubeconfig (set KUBECONFIG)")
    return info


def connection_pool(info: kopf.ConnectionInfo, size: int) -> urllib3.PoolManager:
    """Pooled TLS connections to the apiserver with `info`'s trust and client certificate."""
    context = ssl.create_default_context()
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif info.ca_path or info.ca_data:
        context = ssl.create_default_context(
            cafile=os.fspath(info.ca_path) if info.ca_path else None,
            cadata=_pem(info.ca_data) if info.ca_data else None,
        )
    with tempfile.TemporaryDirectory() as folder:  # ssl loads client certificates from files
        certificate = _file(info.certificate_path, info.certificate_data, Path(folder, "c.pem"))
        if certificate is not None:
            key = _file(info.private_key_path, info.private_key_data, Path(folder, "k.pem"))
            context.load_cert_chain(certificate, key)
    return urllib3.PoolManager(num_pools=2, maxsize=size, block=True, ssl_context=context)


def authorization(info: kopf.ConnectionInfo) -> dict[str, str]:
    if info.token:
        return {"Authorization": f"Bearer {info.token}"}
    if info.username and info.password:
        basic = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {}


def _pem(data: str | bytes) -> str:
    """Kubeconfig `*-data` fields are base64 of the PEM; accept PEM as it is too."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.lstrip().startswith(b"-----BEGIN"):
        return raw.decode()
    return base64.b64decode(raw).decode()


def _file(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None,
    data: str | bytes | None,
    spill: Path,
) -> str | None:
    """`path`, or `data` written to `spill`; None when neither is set."""
    if path:
        return os.fsdecode(path)
    if not data:
        return None
    spill.write_text(_pem(data), encoding="utf-8")
    return str(spill)
