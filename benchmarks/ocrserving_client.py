"""The suites' calls to the cluster: kubectl for one-off objects, and the operator suite's
apiserver client (create and list OCRServings, and wait for them Ready with a watch)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any, cast

import urllib3

from ocr_operator import kube_login

GROUP, VERSION, PLURAL = "ocrserving.io", "v1alpha1", "ocrservings"


def _lines(stream: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The newline-delimited events of a watch, as they arrive."""
    pending = b""
    for chunk in stream.stream(64 * 1024, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())


def kubectl(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    out = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:4])}: {out.stderr.strip()[:500]}")
    return out.stdout


def is_ready(obj: dict[str, Any]) -> bool:
    """Ready=True for the current generation (the operator's own definition of all children
    Ready)."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


# How long one watch runs before the harness lists again and looks at the nodes.
_WATCH_WINDOW_S = 5.0


def _note_ready(
    obj: dict[str, Any], names: set[str], ready: dict[str, float], since: float
) -> None:
    name = obj["metadata"]["name"]
    if name in names and name not in ready and is_ready(obj):
        ready[name] = time.monotonic() - since


class Cluster:
    """The few calls the suite makes to the apiserver, with the operator's own login and
    connection pool (the same credentials, trust and TLS)."""

    def __init__(self, namespace: str) -> None:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # local apiserver
        info = kube_login.connection_info()
        self._server = info.server.rstrip("/")
        self._http = kube_login.connection_pool(info, 8)
        self._headers = {"Accept": "application/json", **kube_login.authorization(info)}
        self._collection = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
        self.node_not_ready_polls = 0

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {**self._headers, "Content-Type": "application/json"}
        payload = json.dumps(body).encode() if body is not None else None
        answer = self._http.request(
            method, self._server + path, body=payload, headers=headers, timeout=60.0
        )
        if answer.status >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status} {answer.data[:300]!r}")
        return json.loads(answer.data)

    def create(self, body: dict[str, Any]) -> None:
        self._call("POST", self._collection, body)

    def items(self) -> list[dict[str, Any]]:
        return list(self._call("GET", self._collection).get("items", []))

    def get(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", f"{self._collection}/{name}"))

    def wait_ready(self, names: set[str], since: float, timeout: float) -> dict[str, float]:
        """Seconds from `since` until each named resource first reported Ready=True. A
        watch, not a list every half second: at 200 resources that list was a load of its
        own on the apiserver being measured. The watch is cut every few seconds to list
        once more (nothing missed across a dropped stream) and to look at the nodes."""
        ready: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(ready) < len(names) and time.monotonic() < deadline:
            listed = self._call("GET", self._collection)
            for obj in listed.get("items", []):
                _note_ready(obj, names, ready, since)
            if len(ready) == len(names):
                break
            version = str(listed["metadata"]["resourceVersion"])
            self._watch_ready(names, ready, since, version, deadline)
            self._watch_nodes()
        return ready

    def _watch_ready(
        self, names: set[str], ready: dict[str, float], since: float, version: str, deadline: float
    ) -> None:
        seconds = int(min(_WATCH_WINDOW_S, max(1.0, deadline - time.monotonic())))
        query = f"watch=true&resourceVersion={version}&timeoutSeconds={seconds}"
        stream = self._http.request(
            "GET",
            f"{self._server}{self._collection}?{query}",
            headers=self._headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=10.0, read=seconds + 10.0),
        )
        try:
            for line in _lines(stream):
                event = json.loads(line)
                if event["type"] == "ERROR":
                    break  # the version is too old: list again
                _note_ready(event["object"], names, ready, since)
                if len(ready) == len(names):
                    break
        finally:
            stream.release_conn()

    def _watch_nodes(self) -> None:
        """Counts polls that saw a node NotReady: pods on such a node are not Ready either,
        whatever the operator does, and the summary must say so."""
        for node in self._call("GET", "/api/v1/nodes").get("items", []):
            found = (node.get("status") or {}).get("conditions") or []
            conditions = {c.get("type"): c.get("status") for c in found}
            if conditions.get("Ready") != "True":
                self.node_not_ready_polls += 1
                return

    def delete_all(self, timeout: float = 180.0) -> None:
        """Delete every OCRServing of the namespace and wait until they are gone. Each holds
        the operator's finalizer, so this needs the operator running; one still there after
        `timeout` fails the suite instead of being measured beside the next pass."""
        for obj in self.items():
            self._call("DELETE", f"{self._collection}/{obj['metadata']['name']}")
        deadline = time.monotonic() + timeout
        while (left := self.items()) and time.monotonic() < deadline:
            time.sleep(1.0)
        if left:
            names = ", ".join(sorted(obj["metadata"]["name"] for obj in left)[:5])
            raise RuntimeError(
                f"{len(left)} OCRServings still present {timeout:.0f} s after their deletion "
                f"({names}...): is the operator running and releasing its finalizer?"
            )
