"""Loads the image's OCR engine once, offline, through the runtime's own code path.

Run by Dockerfile.runtime's build stage as `python warm_engine.py ENGINE`. Python's sockets
are cut off first (buildah, one of the builders, has no `RUN --network=none`): the models
must come from the engine wheels, and any attempt to download weights fails the build.
ENGINE is the extra the image was built with. GPU extras warm on the CPU (no GPU at build
time); paddle-gpu, whose libraries need CUDA even to load, only has its model files checked.
"""

from __future__ import annotations

import socket
import sys
from typing import NoReturn

from ocr_runtime.core.settings import Device, EngineKind, Settings


class NetworkUsedError(RuntimeError):
    """Something tried to reach the network while the engine loaded."""


def _refuse(*args: object, **kwargs: object) -> NoReturn:
    raise NetworkUsedError(f"network access during the offline warm-up: {args[1:]!r}")


def forbid_network() -> None:
    """Every new connection and name lookup made from Python raises `NetworkUsedError`."""
    for name in ("connect", "connect_ex"):
        setattr(socket.socket, name, _refuse)
    for name in ("create_connection", "getaddrinfo"):
        setattr(socket, name, _refuse)


def warm(extra: str) -> str:
    if extra == "paddle-gpu":
        from ocr_runtime.adapters.engines.paddle import PaddleModelDirs  # noqa: PLC0415

        PaddleModelDirs.from_wheel().check()
        return f"engine {extra}: models present and loadable offline"
    from ocr_runtime.adapters.engines import build_engine  # noqa: PLC0415

    kind = EngineKind.ONNX if extra.startswith("onnx") else EngineKind.PADDLE
    engine = build_engine(Settings(engine=kind, device=Device.CPU))
    engine.load()
    if not engine.loaded:
        raise SystemExit(f"engine {engine.name} did not load")
    return f"engine {extra}: models present and loadable offline"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: warm_engine.py ENGINE")
    forbid_network()
    print(warm(sys.argv[1]))
