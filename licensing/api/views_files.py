"""`GET|HEAD /api/v1/extract-files/{token}`: serve one extract file behind a signed link.

The token from `licensing.services.file_delivery.delivery_url` is the only credential, so this is
a plain Django view (no DRF authentication, not in the OpenAPI schema): the API route that meters
the download answers 302 to it. It streams the file in CHUNK_BYTES pieces whatever its size,
answers single byte ranges (206/416), and supports ETag / If-None-Match / If-Range so a client can
resume an interrupted download of a multi-GB file.
"""

import mimetypes
import re
from collections.abc import Iterator
from datetime import datetime

from django.core.files import File
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header, http_date, parse_etags, quote_etag

from licensing.services.file_delivery import (
    DeliveryTokenRejected,
    SignedFile,
    extract_storage,
    open_signed_file,
)

CHUNK_BYTES = 64 * 1024
# One range only: multi-range answers (multipart/byteranges) buy downloaders nothing here.
_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _RangeNotSatisfiable(Exception):
    pass


class _FileSlice:
    """Iterates `length` bytes of an open file from `start`; StreamingHttpResponse calls
    close(), which closes the file even if the client went away before the first chunk."""

    def __init__(self, handle: File, start: int, length: int) -> None:
        self.handle, self.start, self.length = handle, start, length

    def __iter__(self) -> Iterator[bytes]:
        self.handle.seek(self.start)
        remaining = self.length
        while remaining > 0:
            chunk = self.handle.read(min(CHUNK_BYTES, remaining))
            if not chunk:  # the file shrank under us; Content-Length will tell the client
                return
            remaining -= len(chunk)
            yield chunk

    def close(self) -> None:
        self.handle.close()


def _error(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    """The API's error body, `{code, detail}` (marketplace/api/errors.py)."""
    return JsonResponse({"code": code, "detail": detail}, status=status, headers=headers)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte of a single `Range`, None to send the whole file (no
    header, a syntax we ignore as RFC 9110 allows, or several ranges); raises
    _RangeNotSatisfiable when the range lies outside the file."""
    match = _SINGLE_RANGE.match(header.strip())
    if not match or match[1] == match[2] == "":
        return None
    if match[1] == "":  # suffix: the last n bytes
        suffix = int(match[2])
        if suffix == 0 or size == 0:
            raise _RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    first = int(match[1])
    if match[2] and int(match[2]) < first:
        return None  # invalid, not unsatisfiable: ignore it
    if first >= size:
        raise _RangeNotSatisfiable
    return first, min(int(match[2]), size - 1) if match[2] else size - 1


def _etag(grant: SignedFile, size: int, modified: datetime | None) -> str | None:
    if grant.etag:
        return quote_etag(grant.etag)  # the file's SHA-256: a strong validator
    if modified is not None:
        return quote_etag(f"{size:x}-{int(modified.timestamp() * 1_000_000):x}")
    return None


def _none_match(header: str, etag: str | None) -> bool:
    """If-None-Match uses the weak comparison: `W/"x"` matches `"x"`."""
    if not header or etag is None:
        return False
    tags = parse_etags(header)
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def _range_still_valid(if_range: str, etag: str | None, last_modified: str | None) -> bool:
    """If-Range: the range applies only if the client's copy is the current file (a strong
    ETag match or the exact Last-Modified date); otherwise it gets the whole file."""
    if not if_range:
        return True
    if if_range.startswith('"'):
        return etag is not None and if_range == etag
    return last_modified is not None and if_range == last_modified


def signed_file(request: HttpRequest, token: str) -> HttpResponseBase:
    if request.method not in ("GET", "HEAD"):
        detail = f"{request.method} is not allowed here."
        return _error(405, "method_not_allowed", detail, {"Allow": "GET, HEAD"})
    try:
        grant = open_signed_file(token)
    except DeliveryTokenRejected as rejected:
        return _error(rejected.status_code, rejected.code, rejected.detail)

    storage = extract_storage()
    try:
        size = storage.size(grant.storage_name)
    except OSError:
        return _error(404, "file_not_found", "The file behind this link no longer exists.")
    try:
        modified: datetime | None = storage.get_modified_time(grant.storage_name)
    except NotImplementedError:
        modified = None
    etag = _etag(grant, size, modified)
    last_modified = http_date(modified.timestamp()) if modified else None

    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private"}
    if etag:
        headers["ETag"] = etag
    if last_modified:
        headers["Last-Modified"] = last_modified

    if _none_match(request.headers.get("If-None-Match", ""), etag):
        return HttpResponse(status=304, headers=headers)

    byte_range = None
    if _range_still_valid(request.headers.get("If-Range", ""), etag, last_modified):
        try:
            byte_range = _byte_range(request.headers.get("Range", ""), size)
        except _RangeNotSatisfiable:
            headers["Content-Range"] = f"bytes */{size}"
            return _error(416, "range_not_satisfiable", f"The file has {size} bytes.", headers)

    content_type, encoding = mimetypes.guess_type(grant.download_name)
    # A compressed file (.zst, .gz) is delivered as is, never with a Content-Encoding.
    headers["Content-Type"] = (content_type if not encoding else None) or "application/octet-stream"
    headers["Content-Disposition"] = (
        content_disposition_header(as_attachment=True, filename=grant.download_name) or "attachment"
    )
    status, first, length = 200, 0, size
    if byte_range is not None:
        first, last = byte_range
        status, length = 206, last - first + 1
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(length)

    if request.method == "HEAD":
        return HttpResponse(status=status, headers=headers)
    try:
        handle = storage.open(grant.storage_name, "rb")
    except OSError:
        return _error(404, "file_not_found", "The file behind this link no longer exists.")
    return StreamingHttpResponse(_FileSlice(handle, first, length), status=status, headers=headers)
