"""Adapters: the ports implemented on real technology. Only `ocr_runtime.bootstrap` imports them."""
