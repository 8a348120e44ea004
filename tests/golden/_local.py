"""The local cluster as the golden path uses it: the real node, its images, helm, the API.

Every precondition fails with what to run when it is missing; nothing here skips.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from tests.operator._cluster import kubectl
from tests.operator._examples import ROOT
from tests.support.documents import RenderedDocument, normalise, render_document

NODE_SH = ROOT / "scripts" / "infra" / "node.sh"
TOOLS_SH = ROOT / "scripts" / "tools.sh"
CONTAINERD_SOCKET = ROOT / ".local" / "node" / "containerd" / "containerd.sock"
RUNTIME_IMAGE = "localhost/ocr-runtime:dev-onnx"
OPERATOR_IMAGE = "localhost/ocr-operator:dev"
OPERATOR_NS, RELEASE = "ocr-system", "ocr-operator"
VALUES = ROOT / "examples" / "local" / "operator-values.yaml"


def require_real_node() -> None:
    done = subprocess.run([str(NODE_SH), "status"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(
            "the real node is not running (scripts/infra/node.sh status exited "
            f"{done.returncode}: {(done.stdout + done.stderr).strip()[-500:]}); "
            "start it with `scripts/infra/node.sh up`"
        )


def require_images(*images: str) -> None:
    done = subprocess.run(
        [str(NODE_SH), "images"], capture_output=True, text=True, timeout=120, check=False
    )
    present = set(done.stdout.split())
    missing = [image for image in images if image not in present]
    if missing:
        raise AssertionError(
            f"images {missing} are not in the real node's containerd (it has "
            f"{sorted(present)}): build and load them with `make images`"
        )


def helm_path() -> str:
    done = subprocess.run(
        [str(TOOLS_SH), "helm"], capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"scripts/tools.sh helm failed: {done.stderr.strip()[-1000:]}")
    return done.stdout.strip().splitlines()[-1]


def run_tool(command: list[str], *, check: bool = True) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(command[:3])}: {done.stderr.strip()[-2000:]}")
    return done.stdout


@contextlib.contextmanager
def installed_operator(namespace: str, stack: str) -> Iterator[str]:
    """The operator installed by its Helm chart on the real node (yields helm's path); on
    exit the stacks of `namespace` are deleted and the release uninstalled."""
    require_real_node()
    require_images(RUNTIME_IMAGE, OPERATOR_IMAGE)
    helm = helm_path()
    kubectl("create", "namespace", namespace, check=False)
    # Helm installs crds/ only when the CRD is absent; other tests may have applied an older one.
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    # A stack left over from an interrupted run is removed while no operator watches it.
    kubectl("delete", "ocrs", stack, "-n", namespace, "--wait=false", check=False)
    kubectl(
        "patch", "ocrs", stack, "-n", namespace, "--type=merge",
        "-p", '{"metadata":{"finalizers":null}}', check=False,
    )  # fmt: skip
    run_tool([
        helm, "upgrade", "--install", RELEASE, str(ROOT / "charts" / "ocr-operator"),
        "-n", OPERATOR_NS, "--create-namespace", "-f", str(VALUES), "--wait", "--timeout", "5m",
    ])  # fmt: skip
    try:
        yield helm
    finally:
        kubectl("delete", "ocrs", "--all", "-n", namespace, "--wait=true", "--timeout=180s",
                check=False)  # fmt: skip
        run_tool([helm, "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait"], check=False)


def tag_on_node(source: str, target: str) -> None:
    """A second tag of an image the node has: a new image version without a rebuild."""
    subprocess.run(
        ["ctr", "--address", str(CONTAINERD_SOCKET), "--namespace", "k8s.io", "images", "tag",
         "--force", source, target],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


@contextlib.contextmanager
def port_forward(namespace: str, target: str, port: int = 80) -> Iterator[str]:
    """`kubectl port-forward` to a local port the kernel picks; yields the base URL."""
    process = subprocess.Popen(
        ["kubectl", "port-forward", "-n", namespace, target, f":{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+)", line)
        if found is None:
            raise AssertionError(f"kubectl port-forward {target}: {line}{process.stdout.read()}")
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=30)


class ServiceEndpoints:
    """The Service's ready endpoints, round robin, as the Service itself would spread requests.
    Pod IPs on the node's bridge are reachable from this host, and unlike a port-forward (one
    pod) this survives the API's rolling updates and tells which pod answered."""

    def __init__(self, namespace: str, service: str) -> None:
        self.namespace, self.service = namespace, service
        self._addresses: list[str] = []
        self._next = 0

    def refresh(self) -> None:
        out = kubectl(
            "get", "endpointslices", "-n", self.namespace,
            "-l", f"kubernetes.io/service-name={self.service}", "-o", "json",
        )  # fmt: skip
        found = []
        for item in json.loads(out)["items"]:
            ports: list[dict[str, Any]] = item.get("ports") or []
            port = ports[0].get("port", 8000) if ports else 8000
            for endpoint in item.get("endpoints") or []:
                conditions = endpoint.get("conditions") or {}
                if conditions.get("ready") and not conditions.get("terminating"):
                    found += [f"http://{a}:{port}" for a in endpoint.get("addresses", [])]
        self._addresses = found

    def base(self) -> str:
        if not self._addresses:
            self.refresh()
        if not self._addresses:
            raise AssertionError(f"Service {self.service} has no ready endpoint")
        self._next += 1
        return self._addresses[self._next % len(self._addresses)]


def png(document: RenderedDocument) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(document.image).save(buffer, format="PNG")
    return buffer.getvalue()


def documents() -> list[RenderedDocument]:
    texts = [
        ("invoice total 4821", "payment due Seoul"),
        ("order number 3307", "shipping address Busan"),
        ("monthly statement 7713", "balance paid Daegu"),
    ]
    return [render_document(list(lines), size=40) for lines in texts]


def _multipart(body: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="doc.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + body + f"\r\n--{boundary}--\r\n".encode(), boundary


def api_key(namespace: str, stack: str) -> str:
    """The key the operator generated for a stack (Secret `<stack>-api-key`, key `api-key`)."""
    out = kubectl(
        "get", "secret", f"{stack}-api-key", "-n", namespace, "-o", "jsonpath={.data.api-key}"
    )
    return base64.b64decode(out).decode()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post_image(
    base: str,
    path: str,
    image: bytes,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data, boundary = _multipart(image)
    request = urllib.request.Request(
        f"{base}{path}",
        data=data,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})},
    )
    return _send(request, timeout)


def get_json(
    base: str, path: str, timeout: float = 30, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    return _send(urllib.request.Request(f"{base}{path}", headers=headers or {}), timeout)


def _send(request: urllib.request.Request, timeout: float) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")[:500]
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error)


def rows(view: dict[str, Any]) -> list[str]:
    text = ((view or {}).get("result") or {}).get("text", "")
    return [normalise(line) for line in str(text).splitlines() if line.strip()]


@dataclass
class Stream:
    """Submits documents at a steady pace in a thread; remembers every accepted job."""

    endpoints: ServiceEndpoints
    images: list[tuple[bytes, tuple[str, ...]]]
    pause_s: float = 0.25
    headers: dict[str, str] = field(default_factory=dict)
    accepted: dict[str, tuple[str, ...]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def _run(self) -> None:
        index = 0
        while not self._stop.is_set():
            image, lines = self.images[index % len(self.images)]
            try:
                # A key per request: each is a new job, not a duplicate that Redis (when the
                # stack has it) would map to the first upload of the same image.
                headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
                status, body = post_image(
                    self.endpoints.base(), "/v1/jobs", image, timeout=30, headers=headers
                )
            except AssertionError as error:  # no ready endpoint at this instant
                status, body = 0, str(error)
            if status == 202 and isinstance(body, dict):
                self.accepted[body["job_id"]] = lines
            else:
                self.refused.append(f"{status}: {body}")
                self.endpoints.refresh()  # a pod went away: ask for the current ones
            index += 1
            time.sleep(self.pause_s)
