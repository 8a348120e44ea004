"""OCRServing operator: the custom resource, its reconciliation and the topic management."""

API_GROUP = "ocrserving.io"
API_VERSION = "v1alpha1"
KIND = "OCRServing"
PLURAL = "ocrservings"
FIELD_MANAGER = "ocr-operator"

__all__ = ["API_GROUP", "API_VERSION", "FIELD_MANAGER", "KIND", "PLURAL"]
