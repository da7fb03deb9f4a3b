"""ZIP files: bundles of invoices from the tax platform (and the ZIP inside every OFD file).

``expand_bundle`` turns one ZIP into its documents, each named ``bundle.zip!path/in/zip``: every
member that is a PDF, OFD, XML or image; nested ZIPs are opened once (a ZIP inside a nested ZIP
is refused). Members are refused one by one, with a one-line reason, while the rest go on:
names that leave the folder (``../``, absolute paths), encrypted members, members whose
compression ratio or size makes them a zip bomb, members past the member limit.

``open_archive`` and ``read_member`` are the same guards for OFD packages.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from io import BytesIO

from pipeline.config import Settings
from pipeline.errors import EInvoiceUnreadable, InputError, TooLarge, UnsafeInput

DOCUMENT_SUFFIXES = {
    ".pdf",
    ".ofd",
    ".xml",
    ".jpg",
    ".jpeg",
    ".png",
    ".tif",
    ".tiff",
    ".bmp",
    ".webp",
    ".heic",
    ".heif",
}
NESTED_SUFFIXES = {".zip"}
MAX_NESTING = 1


@dataclass
class Member:
    """One document taken from a bundle: its name (``bundle.zip!inner/path``) and bytes, or why not."""

    name: str
    data: bytes = b""
    error: InputError | None = None
    skipped: bool = False  # not a document (a text file, a spreadsheet): named, not failed


def open_archive(data: bytes, what: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise EInvoiceUnreadable(f"{what} is a damaged or truncated ZIP ({exc})") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise EInvoiceUnreadable(f"{what} is a damaged ZIP ({exc})") from exc


def unsafe_name(name: str) -> bool:
    """A member name that would leave the folder it is unpacked to."""
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        return True
    return any(part == ".." for part in cleaned.split("/"))


def member_problem(info: zipfile.ZipInfo, settings: Settings) -> InputError | None:
    """Why a member is refused before reading it, or None."""
    if unsafe_name(info.filename):
        return UnsafeInput(f"member name {info.filename!r} leaves the folder (path traversal): refused")
    if info.flag_bits & 0x1:
        return UnsafeInput("member is encrypted (password protected): refused, unpack it yourself first")
    if info.file_size > settings.max_file_bytes:
        return TooLarge(
            f"member unpacks to {info.file_size / 1e6:.1f} MB, over the {settings.max_file_bytes / 1e6:.0f} MB limit"
        )
    if info.file_size > 1_000_000 and info.file_size > settings.max_compression_ratio * max(
        info.compress_size, 1
    ):
        return UnsafeInput(
            f"member compresses {info.file_size / max(info.compress_size, 1):.0f}:1, over the "
            f"{settings.max_compression_ratio:.0f}:1 limit (a zip bomb): refused"
        )
    return None


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, settings: Settings) -> bytes:
    """The member's bytes, read in chunks: a header that lies about the size cannot unpack more."""
    problem = member_problem(info, settings)
    if problem is not None:
        raise problem
    limit = min(limit, settings.max_file_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise UnsafeInput(
                        f"member {info.filename!r} unpacks to more than {limit / 1e6:.0f} MB "
                        "(a zip bomb, or over the size limits): refused"
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise EInvoiceUnreadable(f"member {info.filename!r} cannot be unpacked: {exc}") from exc
    except RuntimeError as exc:  # zipfile's "File is encrypted, password required"
        raise UnsafeInput(f"member {info.filename!r} is encrypted: refused") from exc
    return b"".join(chunks)


def check_members(archive: zipfile.ZipFile, settings: Settings, what: str) -> list[zipfile.ZipInfo]:
    """The file members of a package, once the whole package is within its limits."""
    infos = [info for info in archive.infolist() if not info.is_dir()]
    if len(infos) > settings.max_bundle_members:
        raise TooLarge(f"{what} holds {len(infos)} files, over the {settings.max_bundle_members}-file limit")
    declared = sum(info.file_size for info in infos)
    if declared > settings.max_unpacked_bytes:
        raise UnsafeInput(
            f"{what} unpacks to {declared / 1e6:.0f} MB, over the {settings.max_unpacked_bytes / 1e6:.0f} MB "
            "limit (a zip bomb): refused"
        )
    return infos


def expand_bundle(data: bytes, name: str, settings: Settings, depth: int = 0) -> list[Member]:
    """The documents inside a ZIP bundle, each a ``Member`` with its bytes or its refusal.

    Raises ``InputError`` when the bundle itself cannot be opened (damaged, truncated).
    """
    archive = open_archive(data, "ZIP file")
    members: list[Member] = []
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        budget = settings.max_unpacked_bytes
        for position, info in enumerate(infos):
            inner = info.filename
            label = f"{name}!{inner}"
            base = posixpath.basename(inner.replace("\\", "/"))
            suffix = posixpath.splitext(base)[1].lower()
            if base.startswith(".") or "__MACOSX/" in inner:
                continue  # Finder's resource forks and hidden files: not documents
            if suffix not in DOCUMENT_SUFFIXES | NESTED_SUFFIXES:
                reason = f"not a document this pipeline reads ({suffix or 'no extension'})"
                members.append(Member(label, error=UnsafeInput(reason), skipped=True))
                continue
            if position >= settings.max_bundle_members:
                members.append(
                    Member(
                        label,
                        error=TooLarge(
                            f"past the {settings.max_bundle_members}-member limit of one bundle: refused"
                        ),
                    )
                )
                continue
            try:
                content = read_member(archive, info, budget, settings)
            except InputError as exc:
                members.append(Member(label, error=exc))
                continue
            budget -= len(content)
            if suffix in NESTED_SUFFIXES and content[:4] == b"PK\x03\x04" and b"OFD.xml" in content[:4096]:
                members.append(Member(label, content))  # an OFD file saved as .zip
                continue
            if suffix in NESTED_SUFFIXES:
                if depth >= MAX_NESTING:
                    members.append(
                        Member(
                            label,
                            error=UnsafeInput(
                                "a ZIP inside a nested ZIP: refused (nested ZIPs are opened once)"
                            ),
                        )
                    )
                    continue
                try:
                    members.extend(expand_bundle(content, label, settings, depth + 1))
                except InputError as exc:
                    members.append(Member(label, error=exc))
                continue
            members.append(Member(label, content))
            if budget <= 0:
                members.append(
                    Member(
                        f"{name}!…",
                        error=UnsafeInput(
                            f"the bundle unpacks to more than {settings.max_unpacked_bytes / 1e6:.0f} MB "
                            "(a zip bomb, or too big): the rest is refused"
                        ),
                    )
                )
                break
    return members
