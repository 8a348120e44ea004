"""Download a model folder and check it against its MANIFEST.json (`ocr-runtime fetch-model`).

Sources: an http(s) `.tar.gz`/`.tgz` archive (MANIFEST.json at its root or in its one
top-level folder); an http(s) folder, named by its MANIFEST.json or by a URL ending in `/`,
whose manifest lists the files to download; an `mlflow-artifacts:/` location, the same kind
of folder served by an MLflow tracking server; an `s3://bucket/key` archive or
`s3://bucket/prefix/` folder, read through an `ObjectStore` (`s3_fetch`). Standard library
only: the init container runs before anything else, in the worker's own image.
"""

from __future__ import annotations

import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Protocol

from ocr_contract import Env
from ocr_runtime.adapters.engines._model_dir import (
    MANIFEST,
    ModelError,
    file_sha256,
    read_manifest,
)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
MLFLOW_ARTIFACTS = "mlflow-artifacts:"
S3_SCHEME = "s3://"
_ARTIFACTS_ROUTE = "/api/2.0/mlflow-artifacts/artifacts/"
_CHUNK = 1 << 20
_TIMEOUT_SECONDS = 60.0


class ModelUnreachableError(Exception):
    """A file of the model could not be downloaded (network, HTTP error): worth a retry."""


class ObjectStore(Protocol):
    """Reads the objects of `s3://` locations (an S3 API and the key pair to sign with)."""

    def download(self, location: str, target: Path) -> None: ...


# Writes the file at a location (a URL, or s3://bucket/key) to a local path.
Download = Callable[[str, Path], None]


def http_location(source: str, tracking_uri: str | None) -> str:
    """The http(s) URL of `source`; an `mlflow-artifacts:/path` (or `mlflow-artifacts://host
    /path`) goes through the tracking server's artifact proxy."""
    if source.startswith(("http://", "https://")):
        return source
    if source.startswith(MLFLOW_ARTIFACTS):
        if not tracking_uri:
            raise ModelError(f"{source}: an mlflow-artifacts location needs --tracking-uri")
        parsed = urllib.parse.urlparse(source)
        return tracking_uri.rstrip("/") + _ARTIFACTS_ROUTE + parsed.path.lstrip("/")
    raise ModelError(f"{source}: not an http(s)://, s3:// or mlflow-artifacts: location")


def fetch_model(
    source: str,
    dest: Path,
    *,
    tracking_uri: str | None = None,
    object_store: ObjectStore | None = None,
) -> Path:
    """Fill `dest` (emptied first: a retried init container starts over) with the model
    at `source`, every file checked against its MANIFEST.json. Raises `ModelError` for a
    model that must not be served or cannot be had as configured, `ModelUnreachableError`
    for one that could not be had now."""
    location, download = _reader(source, tracking_uri, object_store)
    dest.mkdir(parents=True, exist_ok=True)
    _empty(dest)
    if urllib.parse.urlparse(location).path.endswith(ARCHIVE_SUFFIXES):
        _fetch_archive(location, dest, download)
    else:
        _fetch_folder(location, dest, download)
    verify_manifest(dest)
    return dest


def _reader(
    source: str, tracking_uri: str | None, object_store: ObjectStore | None
) -> tuple[str, Download]:
    """(the location to read, how to read a file there) for `source`."""
    if not source.startswith(S3_SCHEME):
        return http_location(source, tracking_uri), _download
    if object_store is None:
        raise ModelError(f"{source}: an s3:// location needs {Env.MODEL_S3_ENDPOINT.value}")
    return source, object_store.download


def _fetch_folder(location: str, dest: Path, download: Download) -> None:
    base = location.removesuffix(MANIFEST).rstrip("/") + "/"
    manifest = dest / MANIFEST
    download(base + MANIFEST, manifest)
    _, _, files = read_manifest(manifest)
    for name in files:
        target = dest / _relative(name, manifest)
        target.parent.mkdir(parents=True, exist_ok=True)
        download(base + urllib.parse.quote(name), target)


def _fetch_archive(location: str, dest: Path, download: Download) -> None:
    archive = dest / ".download.tar.gz"
    download(location, archive)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # The "data" filter refuses absolute paths, links out of the folder and devices.
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelError(f"{location}: not a readable .tar.gz archive ({exc})") from exc
    finally:
        archive.unlink(missing_ok=True)
    entries = list(dest.iterdir())
    if not (dest / MANIFEST).exists() and len(entries) == 1 and entries[0].is_dir():
        folder = entries[0]  # model/MANIFEST.json, model/det.onnx...: lift it up one level
        for child in folder.iterdir():
            child.rename(dest / child.name)
        folder.rmdir()


def verify_manifest(root: Path) -> None:
    """Every file MANIFEST.json lists is there with its SHA-256."""
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise ModelError(f"{manifest}: missing; a fetched model must carry its manifest")
    _, _, files = read_manifest(manifest)
    for name, expected in sorted(files.items()):
        path = root / _relative(name, manifest)
        if not path.is_file():
            raise ModelError(f"{path}: listed in {manifest} but missing")
        digest = file_sha256(path)
        if digest != expected:
            raise ModelError(
                f"{path}: checksum mismatch (sha256 {digest}, {MANIFEST} says {expected})"
            )


def _relative(name: str, manifest: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ModelError(f"{manifest}: file {name!r} is not a path inside the model folder")
    return path


def _download(url: str, target: Path) -> None:
    try:
        download(urllib.request.Request(url), target, source=url)
    except urllib.error.HTTPError as exc:
        raise ModelUnreachableError(f"GET {url}: HTTP {exc.code} {exc.reason}") from exc


def download(request: urllib.request.Request, target: Path, *, source: str) -> None:
    """The body `request` answers, written to `target` in chunks. An HTTP error status
    passes through as urllib's HTTPError, for the caller to type by its source; no answer
    at all is `ModelUnreachableError` naming `source` as the user wrote it."""
    try:
        with (
            urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response,
            target.open("wb") as out,
        ):
            shutil.copyfileobj(response, out, _CHUNK)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as exc:
        raise ModelUnreachableError(f"{request.get_method()} {source}: {exc}") from exc


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
