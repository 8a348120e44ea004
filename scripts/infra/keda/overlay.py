"""Writes a `go build -overlay` file that builds KEDA's operator with only the scalers a stack
uses (kafka, cpu, memory) and without the cloud secret stores, from KEDA's unmodified sources.

KEDA keeps every scaler in one Go package, so the operator cannot be built without the SDKs
of every cloud; with them it compiles for about half an hour on 2 cores, trimmed for a few
minutes. The overlay drops the other scalers' files, keeps only those three cases of the
scaler builder's switch (between KEDA's TRIGGERS-START and TRIGGERS-END markers), and
replaces the Azure helpers and the cloud secret-store handlers by the stubs next to this file.

    python3 overlay.py KEDA_SOURCE_DIR OUT_DIR    # writes OUT_DIR/overlay.json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

KEPT_SCALERS = ("scaler.go", "kafka_scaler.go", "cpu_memory_scaler.go")
TRIGGERS = """\tswitch triggerType {
\tcase "cpu":
\t\treturn scalers.NewCPUMemoryScaler(corev1.ResourceCPU, config)
\tcase "kafka":
\t\treturn scalers.NewKafkaScaler(ctx, config)
\tcase "memory":
\t\treturn scalers.NewCPUMemoryScaler(corev1.ResourceMemory, config)
\tdefault:
\t\treturn nil, fmt.Errorf("no scaler for type %s in this KEDA build (kafka, cpu, memory)",
\t\t\ttriggerType)
\t}
"""
SECRET_STORES = (
    "aws_secretmanager_handler.go",
    "azure_keyvault_handler.go",
    "gcp_secretmanager_handler.go",
    "hashicorpvault_handler.go",
)
STUBS = Path(__file__).resolve().parent / "stubs"


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.go") if not p.name.endswith("_test.go"))


def _builder(source: Path, out: Path) -> Path:
    text = source.read_text()
    trimmed, count = re.subn(
        r"(// TRIGGERS-START\n).*?(\t// TRIGGERS-END)",
        lambda m: m.group(1) + TRIGGERS + m.group(2),
        text,
        flags=re.S,
    )
    if count != 1:
        sys.exit(f"{source}: no TRIGGERS-START/TRIGGERS-END block (an unknown KEDA version)")
    target = out / "scalers_builder.go"
    target.write_text(trimmed)
    return target


def overlay(src: Path, out: Path) -> dict[str, str]:
    replace: dict[str, str] = {}
    for path in _sources(src / "pkg/scalers"):
        if path.name not in KEPT_SCALERS:
            replace[str(path)] = ""
    for path in _sources(src / "pkg/scalers/azure"):
        replace[str(path)] = ""
    replace[str(src / "pkg/scalers/azure/zz_keys.go")] = str(STUBS / "scalers_azure_keys.go")
    resolver = src / "pkg/scaling/resolver"
    for name in SECRET_STORES:
        replace[str(resolver / name)] = ""
    replace[str(resolver / "zz_secret_stores.go")] = str(STUBS / "resolver_cloud_secrets.go")
    event_grid = src / "pkg/eventemitter/azure_event_grid_topic_handler.go"
    replace[str(event_grid)] = str(STUBS / "eventemitter_azure_event_grid.go")
    builder = src / "pkg/scaling/scalers_builder.go"
    replace[str(builder)] = str(_builder(builder, out))
    missing = [p for p in replace if "/zz_" not in p and not Path(p).exists()]
    if missing:
        sys.exit(f"not in this KEDA version: {missing}")
    return replace


def main() -> None:
    src, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "overlay.json").write_text(json.dumps({"Replace": overlay(src, out)}, indent=1))


if __name__ == "__main__":
    main()
