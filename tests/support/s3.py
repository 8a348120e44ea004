"""What a model build step does with an S3 bucket: signed PUTs of a folder's files and of
an archive of it, and signed DELETEs to clean up (standard library, the runtime's signer)."""

from __future__ import annotations

import hashlib
import tarfile
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from ocr_runtime.adapters.sigv4 import S3Credentials, signed_headers
from tests.conftest import S3Server


class Bucket:
    """One bucket of the local S3 server, written as its key pair's owner."""

    def __init__(self, server: S3Server) -> None:
        self.server = server
        self.credentials = S3Credentials(server.access_key_id, server.secret_access_key)
        self.written: list[str] = []

    def location(self, key: str) -> str:
        return f"s3://{self.server.bucket}/{key}"

    def _send(self, method: str, key: str, body: bytes = b"") -> bytes:
        url = f"{self.server.endpoint}/{self.server.bucket}/{quote(key, safe='/~')}"
        headers = signed_headers(
            method,
            url,
            self.credentials,
            at=datetime.now(UTC),
            payload_sha256=hashlib.sha256(body).hexdigest(),
            # urllib's default for a body, form-urlencoded, has the server parse it as a form.
            headers={"Content-Type": "application/octet-stream"},
        )
        request = urllib.request.Request(url, data=body or None, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status in (200, 204), response.status
            return bytes(response.read())

    def put(self, key: str, body: bytes) -> None:
        self._send("PUT", key, body)
        self.written.append(key)

    def get(self, key: str) -> bytes:
        return self._send("GET", key)

    def put_folder(self, folder: Path, prefix: str) -> str:
        """Every file of `folder` under `prefix/`; returns the folder's s3:// location."""
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.put(f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())
        return self.location(f"{prefix}/")

    def put_archive(self, folder: Path, key: str) -> str:
        """`folder` as a .tar.gz with one top-level folder; returns its s3:// location."""
        archive = folder.parent / f"{folder.name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        self.put(key, archive.read_bytes())
        return self.location(key)

    def delete_written(self) -> None:
        for key in self.written:
            self._send("DELETE", key)
        self.written.clear()
