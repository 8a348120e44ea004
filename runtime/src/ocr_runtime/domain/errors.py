"""Typed domain errors. The API maps each to an HTTP status in one place."""


class DomainError(Exception):
    """Root of every error raised by the domain."""


class IllegalTransition(DomainError):
    """A job was asked to move to a status its current status does not allow."""


class InvalidImage(DomainError):
    """The bytes are not an image this service accepts (decoding failed, too many pixels...)."""
