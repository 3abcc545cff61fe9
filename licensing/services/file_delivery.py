"""Short-lived URLs for extract files, and the checks behind them.

Extract files live in the `extracts` storage alias (settings.STORAGES): on disk by default, in S3
in production. A caller that has already authorized and metered a download (see
`licensing.services.downloads`) asks `delivery_url` for a link valid for at most
EXTRACT_URL_TTL_SECONDS:

- S3: a presigned GET URL (SigV4, `X-Amz-Expires` = ttl) that makes S3 answer with a
  `Content-Disposition: attachment` header; the bytes never pass through Django.
- Anything else: a URL to `licensing.api.views_files.signed_file` whose last path segment is a
  token signed with Django's signing (salt `commonplace.extract-file`). The token binds the
  storage name, the name the browser saves the file as, the file's ETag when known, and an expiry.
  The token is the only credential: whoever holds it may fetch that one file until it expires.

Nothing here writes to the database; every function is safe to call any number of times.
"""

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeGuard

from django.conf import settings
from django.core import signing
from django.core.files.storage import Storage, storages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import content_disposition_header

from marketplace.errors import NotAllowed

if TYPE_CHECKING:
    from storages.backends.s3 import S3Storage

TOKEN_SALT = "commonplace.extract-file"
SIGNED_FILE_ROUTE = "extract-signed-file"


class DeliveryTokenRejected(NotAllowed):
    """The signed file URL is malformed, tampered with or expired (403)."""

    default_code = "delivery_link_invalid"


@dataclass(frozen=True)
class SignedFile:
    """What a valid token grants: one stored file, under one download name."""

    storage_name: str
    download_name: str
    etag: str | None = None


def extract_storage() -> Storage:
    """The storage extract files are written to and served from (the `extracts` alias)."""
    return storages["extracts"]


def is_s3_storage(storage: Storage) -> TypeGuard["S3Storage"]:
    # Imported lazily: boto3 is heavy and unused by the embedded (file-system) setup.
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # django-storages without boto3
        return False
    return isinstance(storage, S3Storage)


def _ttl(ttl_seconds: int | None) -> int:
    ceiling = settings.EXTRACT_URL_TTL_SECONDS
    ttl = ceiling if ttl_seconds is None else ttl_seconds
    if not 0 < ttl <= ceiling:
        raise ValueError(f"ttl_seconds must be between 1 and {ceiling}, not {ttl}")
    return ttl


def delivery_url(
    storage_name: str,
    *,
    download_name: str,
    request: HttpRequest | None = None,
    ttl_seconds: int | None = None,
    etag: str | None = None,
) -> str:
    """A URL that serves `storage_name` of the extract storage as an attachment called
    `download_name`, valid for `ttl_seconds` (default and maximum EXTRACT_URL_TTL_SECONDS).

    `etag` is the file's SHA-256 (hex) when the caller knows it (the manifest does); it becomes
    the strong ETag of the file-system view. Without it the view derives one from size and mtime.
    The URL is absolute: built from `request` when given, else from PUBLIC_BASE_URL.
    Pure: does not check that the file exists (S3 presigning is local, it makes no request).
    """
    ttl = _ttl(ttl_seconds)
    storage = extract_storage()
    if is_s3_storage(storage):
        disposition = content_disposition_header(as_attachment=True, filename=download_name)
        return storage.url(
            storage_name,
            parameters={"ResponseContentDisposition": disposition},
            expire=ttl,
        )
    payload = {"n": storage_name, "d": download_name, "x": int(time.time()) + ttl}
    if etag:
        payload["e"] = etag
    token = signing.dumps(payload, salt=TOKEN_SALT, compress=True)
    path = reverse(SIGNED_FILE_ROUTE, kwargs={"token": token})
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def open_signed_file(token: str) -> SignedFile:
    """Check a token from `delivery_url` and say which file it grants.

    Raises DeliveryTokenRejected (code `delivery_link_expired` or `delivery_link_invalid`).
    Two limits apply: the signature's age against EXTRACT_URL_TTL_SECONDS (so no token outlives
    the configured ceiling, whatever it carries) and the token's own, possibly shorter, expiry.
    """
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=settings.EXTRACT_URL_TTL_SECONDS)
    except signing.SignatureExpired as error:
        raise _expired() from error
    except (signing.BadSignature, ValueError) as error:  # ValueError: undecodable payload
        raise DeliveryTokenRejected(
            "This download link is not valid. Ask the API for a new one.",
        ) from error
    if not isinstance(payload, dict) or not {"n", "d", "x"} <= payload.keys():
        raise DeliveryTokenRejected("This download link is not valid. Ask the API for a new one.")
    if time.time() > payload["x"]:
        raise _expired()
    return SignedFile(payload["n"], payload["d"], payload.get("e"))


def _expired() -> DeliveryTokenRejected:
    return DeliveryTokenRejected(
        "This download link has expired; links are valid for "
        f"{settings.EXTRACT_URL_TTL_SECONDS} seconds. Ask the API for a new one.",
        code="delivery_link_expired",
    )
