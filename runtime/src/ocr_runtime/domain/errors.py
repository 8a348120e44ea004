"""Typed errors. `OcrError` is the one root of the service: each subclass carries a stable
machine-readable `code` and the HTTP status it means, so the API maps every error to a JSON
body in a single handler. The domain itself never speaks HTTP; the status is just data."""

from __future__ import annotations

from typing import ClassVar


class OcrError(Exception):
    """Root of every error the service reports to a client."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> dict[str, str]:
        """Extra fields for the error body (for example the job id of a timed-out wait)."""
        return {}


class DomainError(OcrError):
    """Root of every error raised by the domain."""

    code = "domain_error"
    http_status = 409


class IllegalTransition(DomainError):  # noqa: N818 (names are the contract)
    """A job was asked to move to a status its current status does not allow."""

    code = "illegal_transition"
    http_status = 409


class InvalidImage(DomainError):  # noqa: N818 (names are the contract)
    """The bytes are not an image this service accepts (decoding failed, truncated...)."""

    code = "invalid_image"
    http_status = 422


class ImageTooLarge(InvalidImage):
    """More bytes than the upload limit."""

    code = "image_too_large"
    http_status = 413


class TooManyPixels(InvalidImage):
    """More pixels than the pixel limit, or a decompression bomb."""

    code = "too_many_pixels"
    http_status = 422


class UnsupportedMediaType(InvalidImage):
    """A media type (declared or detected) this service does not decode."""

    code = "unsupported_media_type"
    http_status = 415


class TooManyPages(InvalidImage):
    """A document with more pages than the page limit."""

    code = "too_many_pages"
    http_status = 422


class EncryptedDocument(InvalidImage):
    """A password-protected document: its pages cannot be read without the password."""

    code = "encrypted_document"
    http_status = 422
