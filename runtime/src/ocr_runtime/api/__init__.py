"""HTTP API (FastAPI). Imports the application layer only; adapters come in via create_app."""

from ocr_runtime.api.app import create_app

__all__ = ["create_app"]
