"""Which CPUs get PaddlePaddle's AVX-512-only fusion pass removed (no engine loaded)."""

from __future__ import annotations

from pathlib import Path

from ocr_runtime.adapters.engines.paddle import cpu_has_avx512


def cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\n")
    return path


def test_a_cpu_with_avx512_foundation_keeps_the_pass(tmp_path: Path) -> None:
    assert cpu_has_avx512(cpuinfo(tmp_path, "fpu sse2 avx avx2 fma avx512f avx512bw"))


def test_a_cpu_with_only_avx2_loses_it(tmp_path: Path) -> None:
    assert not cpu_has_avx512(cpuinfo(tmp_path, "fpu sse2 avx avx2 fma avx512_bf16x"))


def test_an_unreadable_cpuinfo_is_taken_as_capable(tmp_path: Path) -> None:
    assert cpu_has_avx512(tmp_path / "missing")
