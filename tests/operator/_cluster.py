"""Small helpers for the operator's end-to-end tests: kubectl and polling."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=150, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout + result.stderr if not check else result.stdout


def apply_documents(namespace: str, documents: list[dict[str, Any]]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(documents))


def get(kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = subprocess.run(
        ["kubectl", "get", kind, name, "-n", namespace, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(f"kubectl get {kind} {name}: {result.stderr.strip()}")
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def names(kind: str, namespace: str, selector: str) -> set[str]:
    out = kubectl("get", kind, "-n", namespace, "-l", selector, "-o", "json")
    return {item["metadata"]["name"] for item in json.loads(out)["items"]}


def condition(resource: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for item in ((resource or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}


def container_env(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 120) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except AssertionError as error:
            last = error
        else:
            if value:
                return value
            last = value
        time.sleep(1)
    raise AssertionError(f"gave up waiting for {what}; last: {last!r}")


def install_crds(crds_dir: str, name: str = "ocrservings.ocrserving.io") -> None:
    """Apply the CRDs and wait until `name` is Established. Polled rather than `kubectl wait`,
    which fails at once ("status.conditions accessor error") when asked before the
    apiserver has written the CRD's first condition."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", crds_dir)
    jsonpath = '{.status.conditions[?(@.type=="Established")].status}'
    wait_for(
        lambda: kubectl("get", "crd", name, "-o", f"jsonpath={jsonpath}").strip() == "True",
        f"CRD {name} Established",
        timeout=60,
    )


@contextlib.contextmanager
def standin_crd(path: Path, name: str) -> Iterator[None]:
    """A stand-in CRD (tests/operator/testdata) for an operator the local cluster cannot
    run, unless the real one is there; removed afterwards."""
    present = get("crd", name, "default")
    if present is None:
        kubectl("apply", "-f", str(path))
        jsonpath = '{.status.conditions[?(@.type=="Established")].status}'
        wait_for(
            lambda: kubectl("get", "crd", name, "-o", f"jsonpath={jsonpath}").strip() == "True",
            f"stand-in CRD {name} Established",
            timeout=60,
        )
    try:
        yield
    finally:
        if present is None:
            kubectl("delete", "crd", name, "--wait=false", check=False)
