"""Writes a single-layer container image as a `docker save` archive, from files on this host.

The local node's own images (the pod sandbox and a busybox test image) are a few static
files each, so no image builder or registry is needed: `ctr images import` loads the
archive into containerd. Deterministic: the same inputs give the same image id.

Usage: image_archive.py --name REF --out FILE [--add SRC:DEST]... [--link DEST=TARGET]...
       [--dir DEST]... [--entrypoint ARG]... [--cmd ARG]... [--env K=V]...
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    return info


def layer_bytes(adds: list[str], links: list[str], dirs: list[str]) -> bytes:
    """The layer tar: directories first, then files (keeping their mode), then symlinks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        wanted = set(dirs)
        for dest in [a.split(":", 1)[1] for a in adds] + [k.split("=", 1)[0] for k in links]:
            parent = str(Path(dest).parent)
            while parent not in ("/", ""):
                wanted.add(parent)
                parent = str(Path(parent).parent)
        for directory in sorted(wanted):
            tar.addfile(
                _entry(directory, tarfile.DIRTYPE, 0o1777 if directory == "/tmp" else 0o755)
            )
        for spec in adds:
            src, dest = spec.split(":", 1)
            data = Path(src).read_bytes()
            info = _entry(dest, tarfile.REGTYPE, Path(src).stat().st_mode & 0o7777)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for spec in links:
            dest, target = spec.split("=", 1)
            info = _entry(dest, tarfile.SYMTYPE, 0o777)
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


def image_config(layer_digest: str, args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {"Env": args.env or ["PATH=/bin:/usr/bin"]}
    if args.entrypoint:
        config["Entrypoint"] = args.entrypoint
    if args.cmd:
        config["Cmd"] = args.cmd
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "image_archive.py"}],
    }


def write_archive(args: argparse.Namespace) -> str:
    """Writes the archive and returns the image id (the config's digest)."""
    layer = layer_bytes(args.add, args.link, args.dir)
    layer_hex = hashlib.sha256(layer).hexdigest()
    config = json.dumps(image_config(f"sha256:{layer_hex}", args), sort_keys=True).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = [
        {"Config": f"{config_hex}.json", "RepoTags": [args.name], "Layers": [f"{layer_hex}.tar"]}
    ]
    members = {
        f"{layer_hex}.tar": layer,
        f"{config_hex}.json": config,
        "manifest.json": json.dumps(manifest).encode(),
    }
    with tarfile.open(args.out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = _entry(name, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return f"sha256:{config_hex}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", required=True)
    for flag in ("--add", "--link", "--dir", "--entrypoint", "--cmd", "--env"):
        parser.add_argument(flag, action="append", default=[])
    print(write_archive(parser.parse_args()))


if __name__ == "__main__":
    main()
