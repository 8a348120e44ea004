"""Ports handed to test servers stay out of the range the kernel picks source ports from."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.ports import free_port


def test_a_free_port_is_below_the_ephemeral_range_and_above_our_fixed_ports() -> None:
    ephemeral_start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(20_000 <= port < min(30_000, ephemeral_start) for port in ports), ports
    assert len(ports) > 1, "chosen at random, not one port for every caller"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))  # and it is free
