"""OCR serving runtime: one image, three roles (api, worker, writer) plus an all-in-one mode."""

__version__ = "0.1.0"
