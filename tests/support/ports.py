"""Ports for servers that tests start."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Our services' fixed ports are below this; Kubernetes' NodePorts begin at 30000.
_LOWEST = 20_000
_HIGHEST = 29_999


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A free port that no outgoing connection can take before the server binds it. A port
    from bind(0) lies in the kernel's ephemeral range, from which every connect() picks its
    source port: with Kafka and HTTP clients busy beside the test, one did, and the server
    started on it failed with "address already in use". So: below that range, and above the
    fixed ports of this project's services."""
    highest = min(_HIGHEST, _ephemeral_start() - 1)
    for _ in range(200):
        port = random.randint(_LOWEST, highest)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port between {_LOWEST} and {highest}")
