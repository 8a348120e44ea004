"""kubectl helpers for the packaging tests that talk to the local apiserver."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Kubectl:
    """kubectl bound to one kubeconfig (optionally impersonating an identity)."""

    def __init__(self, kubeconfig: Path, impersonate: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.impersonate = impersonate

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", f"--kubeconfig={self.kubeconfig}"]
        if self.impersonate:
            cmd.append(f"--as={self.impersonate}")
        return subprocess.run(
            [*cmd, *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr.strip()}"
        return done.stdout

    def json(self, *args: str) -> dict[str, Any] | None:
        done = self.run(*args, "-o", "json")
        if done.returncode != 0:
            if "NotFound" in done.stderr:
                return None
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        body: dict[str, Any] = json.loads(done.stdout)
        return body

    def can_i(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        args = ["auth", "can-i", verb, resource]
        args += ["-n", namespace] if namespace else ["--all-namespaces"]
        done = self.run(*args)
        answer = done.stdout.strip()
        assert answer in {"yes", "no"}, f"can-i {verb} {resource}: {done.stdout} {done.stderr}"
        return answer == "yes"


def private_copy(kubeconfig: Path, folder: Path) -> Path:
    """A copy of the admin kubeconfig: the shared file is rewritten whenever someone runs
    `cluster.sh up`, and a test must not read it half-written."""
    copy = folder / "admin.kubeconfig"
    copy.write_bytes(kubeconfig.read_bytes())
    copy.chmod(0o600)
    return copy


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def condition(resource: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for item in ((resource or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 180) -> T:
    """Polls probe until it returns something truthy; fails naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        last = value
        time.sleep(1)
    raise AssertionError(f"gave up waiting for {what}; last: {last!r}")


def namespaces(kubectl: Kubectl, names: Sequence[str]) -> None:
    for name in names:
        kubectl.ok("create", "namespace", name)
