"""The S3 backend (boto3): any S3-compatible service, AWS S3 included.

Configured by a URL, ``s3://bucket/prefix``, plus the standard AWS chain for the rest:
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), ``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and ``~/.aws/{config,credentials}``.
What those do not cover (addressing style, server-side encryption, attempts) is in
``pipeline.config.S3Settings``.

Guarantees, same as the local backend:

* ``put(create_only=True)`` sends ``If-None-Match: *``: the service refuses the write if the key
  exists (412), so a re-ingest never overwrites an original and of two racing writers exactly one
  wins. A service without conditional writes answers 501, which becomes a clear ``StorageError``.
* A plain ``put`` replaces the object whole; S3 never exposes a half-written object.
* Transient failures (connection refused or reset, timeouts, 5xx, throttling) are retried by
  botocore's "standard" mode: exponential backoff with jitter, ``max_attempts`` tries in all.
* Every other failure is one ``StorageError`` line naming the bucket, the endpoint and the fix.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import quote, unquote, urlsplit

from pipeline.config import S3Settings
from pipeline.errors import ConfigError, NotFound, StorageError
from pipeline.store.objects import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose)
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_METADATA_SAFE = "/:()[],;=+@!$'*~"

_CREDENTIAL_HINT = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the AWS_PROFILE in use)"


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (``bucket``, ``some/prefix/``); the prefix may be empty."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
    if parts.query or parts.fragment:
        raise ConfigError(f"S3 URL {url!r} must not have a query or fragment: use INVOICES_S3_* variables")
    bucket = parts.netloc
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise ConfigError(f"invalid S3 bucket name {bucket!r} in {url!r}")
    prefix = "/".join(part for part in parts.path.split("/") if part)
    if any(part in {".", ".."} for part in prefix.split("/")):
        raise ConfigError(f"invalid S3 prefix in {url!r}")
    return bucket, f"{prefix}/" if prefix else ""


def default_index_name(url: str, endpoint_url: str | None = None) -> str:
    """``<bucket>-<hash>.sqlite``: the hash covers the endpoint and the prefix."""
    bucket, prefix = parse_s3_url(url)
    digest = hashlib.sha256(f"{endpoint_url or ''}|{prefix}".encode()).hexdigest()[:12]
    return f"{bucket}-{digest}.sqlite"


def _is_aws(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


class S3ObjectStore(ObjectStore):
    def __init__(self, url: str, settings: S3Settings | None = None, client: Any = None) -> None:
        self.settings = settings or S3Settings()
        self.bucket, self.prefix = parse_s3_url(url)
        self.location = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.client = client if client is not None else self._make_client()
        self.endpoint = str(self.client.meta.endpoint_url)
        self._extra_put: dict[str, str] = {}
        if self.settings.encryption:
            self._extra_put["ServerSideEncryption"] = self.settings.encryption
            if self.settings.encryption == "aws:kms" and self.settings.kms_key_id:
                self._extra_put["SSEKMSKeyId"] = self.settings.kms_key_id
        elif self.settings.kms_key_id:
            raise ConfigError("INVOICES_S3_SSE_KMS_KEY_ID is set but INVOICES_S3_SSE is not aws:kms")

    # ---- set-up -----------------------------------------------------------------------

    def _make_client(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError
        except ImportError as exc:  # boto3 is a dependency; this only happens in a broken install
            raise StorageError(f"S3 stores need boto3: pip install boto3 ({exc})") from exc

        def make(style: str | None) -> Any:
            config = Config(
                signature_version="s3v4",
                s3={"addressing_style": style} if style else None,
                retries={"max_attempts": self.settings.max_attempts, "mode": "standard"},
                connect_timeout=self.settings.connect_timeout,
                read_timeout=self.settings.read_timeout,
                max_pool_connections=self.settings.max_pool_connections,
            )
            # botocore reads AWS_ENDPOINT_URL(_S3), AWS_DEFAULT_REGION, credentials and the
            # config files itself; AWS_REGION is the SDK-wide name it does not read.
            region = os.environ.get("AWS_REGION") or None
            return session.client("s3", region_name=region, config=config)

        try:
            session = boto3.session.Session()
            client = make(self.settings.addressing_style)
            if self.settings.addressing_style is None and not _is_aws(client.meta.endpoint_url):
                s3_section = session._session.get_scoped_config().get("s3")
                if not (isinstance(s3_section, dict) and s3_section.get("addressing_style")):
                    # Self-hosted services rarely have wildcard DNS for virtual-hosted buckets.
                    client = make("path")
            return client
        except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
            raise StorageError(f"cannot set up the S3 client for {self.location}: {_one_line(exc)}") from exc
        except ValueError as exc:  # e.g. a malformed AWS_ENDPOINT_URL
            raise StorageError(f"invalid S3 configuration for {self.location}: {_one_line(exc)}") from exc

    def check(self) -> None:
        """Fail fast: the endpoint answers, the credentials are accepted, the bucket exists."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            if _status(exc) == 403:
                # HEAD has no body, so no error code: a listing says which of the 403s it is.
                try:
                    self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
                except Exception as listing_exc:
                    self._raise(listing_exc, "open")
            self._raise(exc, "open")
        log.debug("S3 store %s at %s is reachable", self.location, self.endpoint)

    # ---- ObjectStore --------------------------------------------------------------------

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"invalid object key {key!r}")
        return self.prefix + key

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        create_only: bool = False,
    ) -> bool:
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "Body": data,
            "ContentType": content_type,
            "Metadata": {
                name.lower(): quote(str(value), safe=_METADATA_SAFE)
                for name, value in (metadata or {}).items()
            },
            **self._extra_put,
        }
        if create_only:
            request["IfNoneMatch"] = "*"
        for _ in range(3):
            try:
                self.client.put_object(**request)
                return True
            except Exception as exc:
                code, status = _code(exc), _status(exc)
                if create_only and (code == "PreconditionFailed" or status == 412):
                    return False
                if create_only and code == "ConditionalRequestConflict":
                    # AWS: another conditional write to this key is in flight; ask again.
                    if self.exists(key):
                        return False
                    continue
                if create_only and (code == "NotImplemented" or status == 501):
                    raise StorageError(
                        f"the S3 service at {self.endpoint} does not support conditional writes "
                        "(If-None-Match), which create-only originals need"
                    ) from exc
                self._raise(exc, "write", key)
        self._raise_message(f"S3 write of {key} in {self.location} kept conflicting with another writer")

    def get(self, key: str) -> bytes:
        return self.get_with_metadata(key)[0]

    def get_with_metadata(self, key: str) -> tuple[bytes, dict[str, str]]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data = response["Body"].read()
        except Exception as exc:
            if _code(exc) in {"NoSuchKey", "404", "NotFound"}:
                raise NotFound(f"no object {key} in {self.location}") from exc
            self._raise(exc, "read", key)
        return data, _metadata(response)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except Exception as exc:
            if _status(exc) == 404 or _code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return False
            self._raise(exc, "check", key)

    def metadata(self, key: str) -> dict[str, str]:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _status(exc) == 404:
                return {}
            self._raise(exc, "check", key)
        return _metadata(response)

    def keys(self, prefix: str = "") -> Iterator[str]:
        for info in self.list(prefix):
            yield info.key

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        item["Key"][len(self.prefix) :], int(item["Size"]), item["LastModified"].timestamp()
                    )
        except Exception as exc:
            self._raise(exc, "list", prefix or "/")

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _status(exc) != 404:
                self._raise(exc, "delete", key)

    # ---- errors -----------------------------------------------------------------------

    def _raise(self, exc: BaseException, action: str, key: str = "") -> NoReturn:
        raise StorageError(describe_error(exc, self.bucket, self.endpoint, action, key)) from exc

    @staticmethod
    def _raise_message(message: str) -> NoReturn:
        raise StorageError(message)


def describe_error(exc: BaseException, bucket: str, endpoint: str, action: str, key: str = "") -> str:
    """One line saying what went wrong with an S3 request and what to check."""
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    code, status = _code(exc), _status(exc)
    what = f"{action} {key}".strip()
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return f"no S3 credentials for bucket '{bucket}' at {endpoint}: {_CREDENTIAL_HINT}"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        return f"cannot reach the S3 endpoint {endpoint} ({what}): {_one_line(exc)}"
    if isinstance(exc, ReadTimeoutError):
        return f"the S3 endpoint {endpoint} did not answer in time ({what}): {_one_line(exc)}"
    if code == "NoSuchBucket" or (status == 404 and action == "open"):
        return f"S3 bucket '{bucket}' does not exist at {endpoint}"
    if code == "InvalidAccessKeyId":
        return f"S3 at {endpoint} does not know the access key ({code}): {_CREDENTIAL_HINT}"
    if code == "SignatureDoesNotMatch":
        return f"S3 at {endpoint} rejected the secret key ({code}): {_CREDENTIAL_HINT}"
    if code in {"InvalidToken", "ExpiredToken", "TokenRefreshRequired"}:
        return f"S3 at {endpoint} rejected the session token ({code}): refresh AWS_SESSION_TOKEN"
    if code == "AccessDenied" or status == 403:
        return (
            f"S3 at {endpoint} denied access to bucket '{bucket}' ({what}, {code or status}): "
            f"{_CREDENTIAL_HINT} and the bucket policy"
        )
    if code == "PermanentRedirect" or status == 301:
        return f"S3 bucket '{bucket}' is in another region than {endpoint}: set AWS_REGION"
    if code:
        message = _one_line(exc.response.get("Error", {}).get("Message", ""))  # type: ignore[attr-defined]
        return f"S3 {what} failed for bucket '{bucket}' at {endpoint}: {code}: {message}".rstrip(": ")
    return f"S3 {what} failed for bucket '{bucket}' at {endpoint}: {type(exc).__name__}: {_one_line(exc)}"


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def _metadata(response: dict[str, Any]) -> dict[str, str]:
    meta = {name: unquote(value) for name, value in (response.get("Metadata") or {}).items()}
    return {"content_type": str(response.get("ContentType", "application/octet-stream")), **meta}


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
