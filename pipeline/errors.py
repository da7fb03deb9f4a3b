"""One exception tree; ``cli.py`` maps it to exit codes at the edge."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    SOME_FAILED = 1
    BAD_ARGS = 2
    MISSING_DEPENDENCY = 3
    STORAGE = 4
    NOT_FOUND = 5
    OTHER = 10


class PipelineError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = ExitCode.OTHER


class InputError(PipelineError):
    """A document that cannot be processed: the batch records it and goes on."""

    exit_code = ExitCode.SOME_FAILED


class EmptyFile(InputError):
    pass


class UnsupportedFormat(InputError):
    pass


class ImageUnreadable(InputError):
    pass


class PdfUnreadable(InputError):
    pass


class EncryptedPdf(PdfUnreadable):
    pass


class TooLarge(InputError):
    pass


class EInvoiceUnreadable(InputError):
    """An OFD package or e-invoice XML that is damaged or not an invoice's."""


class UnsafeInput(InputError):
    """Refused on purpose: XML with entities or a DTD, ZIP names leaving the folder, zip bombs, encryption."""


class OcrEngineError(PipelineError):
    exit_code = ExitCode.OTHER


class MissingDependency(PipelineError):
    """A package, binary or model that must be installed first; the message names the fix."""

    exit_code = ExitCode.MISSING_DEPENDENCY


class ConfigError(PipelineError):
    exit_code = ExitCode.BAD_ARGS


class ClusterError(PipelineError):
    """The Dask cluster cannot be reached, or was lost during the run (``invoices ingest --cluster``)."""

    exit_code = ExitCode.OTHER


class StorageError(PipelineError):
    exit_code = ExitCode.STORAGE


class NotFound(PipelineError):
    exit_code = ExitCode.NOT_FOUND


class NotAnInvoice(InputError):
    """The page holds no readable invoice text (a photo of something else, a blank page)."""
