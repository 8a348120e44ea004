"""Which model a process serves: what `/readyz` and the `ocr_runtime_info` metric report, so
that a rollout can be checked against the model a registry alias points at."""

from __future__ import annotations

from dataclasses import dataclass

# Characters of the checksum kept in the metric label: enough to tell builds apart, short
# enough for a dashboard legend.
LABEL_CHECKSUM_CHARS = 12


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    name: str
    version: str
    checksum: str  # SHA-256 hex over the model files the engine loads (see `model_checksum`)

    @property
    def label(self) -> str:
        """`name:version@checksum-prefix`: the `model_version` label of `ocr_runtime_info`."""
        return f"{self.name}:{self.version}@{self.checksum[:LABEL_CHECKSUM_CHARS]}"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "checksum": self.checksum}
