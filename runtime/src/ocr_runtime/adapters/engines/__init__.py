"""OCR engines behind the `OcrEngine` port. `build_engine` picks one from the settings; the
ONNX and Paddle modules are imported only when chosen, so an image built with one extra
never imports the other's libraries."""

from __future__ import annotations

from ocr_runtime.adapters.engines._installed import engine_mismatch
from ocr_runtime.adapters.engines._model_dir import (
    ModelError,
    ModelFiles,
    resolve_models,
    write_manifest,
)
from ocr_runtime.adapters.engines.noop import NoopEngine
from ocr_runtime.application.ports import OcrEngine
from ocr_runtime.core.cpu import available_cpus
from ocr_runtime.core.settings import Device, EngineKind, Settings

# Batch sizes used when the settings leave them at 0 (auto), from
# `python -m tests.support.engine_throughput` on 2 CPU cores: cross-image recognition saved
# about 20% CPU per image at batch 8, padded detection batches saved nothing on the CPU.
AUTO_DET_BATCH = {Device.CPU: 1, Device.GPU: 8}
AUTO_REC_BATCH = {Device.CPU: 6, Device.GPU: 64}


def engine_models(settings: Settings) -> ModelFiles | None:
    """The checked model folder of a real engine (raises `ModelError`); None for the
    engines without model files (noop, synthetic)."""
    if settings.engine in (EngineKind.ONNX, EngineKind.PADDLE):
        return resolve_models(settings)
    return None


def build_engine(settings: Settings, models: ModelFiles | None = None) -> OcrEngine:
    """The engine `settings.engine` names, not loaded yet: call `load()` at start (the
    process checks `engine_mismatch` first). `models`: from `resolve_models(settings)`,
    which raises `ModelError` for a folder that must not be served; None resolves here."""
    if models is None and settings.engine in (EngineKind.ONNX, EngineKind.PADDLE):
        models = resolve_models(settings)
    rec_batch = settings.rec_batch_size or AUTO_REC_BATCH[settings.device]
    if settings.engine is EngineKind.ONNX:
        from ocr_runtime.adapters.engines.rapid import (  # noqa: PLC0415
            RapidOcrEngine,
            RapidOcrOptions,
        )

        return RapidOcrEngine(
            RapidOcrOptions(
                device=settings.device,
                # ONNX Runtime's default is the host's core count (PaddleOCR's, 10 threads),
                # whatever the pod's CPU limit: 64 threads on a 2-CPU quota wait on each other.
                threads=settings.engine_threads or available_cpus(),
                det_batch_size=settings.det_batch_size or AUTO_DET_BATCH[settings.device],
                rec_batch_size=rec_batch,
                orientation=settings.line_orientation,
                models=models,
                # Measured on an H200: each new input shape cost the CUDA provider about a
                # second, and nearly every page and line batch has its own (`_buckets`).
                shape_buckets=settings.device is Device.GPU,
            )
        )
    if settings.engine is EngineKind.PADDLE:
        from ocr_runtime.adapters.engines.paddle import (  # noqa: PLC0415
            PaddleOcrEngine,
            PaddleOcrOptions,
        )

        return PaddleOcrEngine(
            PaddleOcrOptions(
                device=settings.device,
                threads=settings.engine_threads or available_cpus(),
                rec_batch_size=rec_batch,
                models=models,
                orientation=settings.line_orientation,
            )
        )
    if settings.engine is EngineKind.SYNTHETIC:
        from ocr_runtime.adapters.engines.synthetic import SyntheticEngine  # noqa: PLC0415

        return SyntheticEngine()
    return NoopEngine()


__all__ = [
    "AUTO_DET_BATCH",
    "AUTO_REC_BATCH",
    "ModelError",
    "ModelFiles",
    "NoopEngine",
    "build_engine",
    "engine_mismatch",
    "engine_models",
    "resolve_models",
    "write_manifest",
]
