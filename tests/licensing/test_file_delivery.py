"""Short-lived download links for extract files: the signed file-system view (ranges, ETags,
expiry, tampering, flat memory) and presigned S3 URLs against moto's server on loopback."""

import hashlib
import os
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from freezegun import freeze_time
from moto.server import ThreadedMotoServer

from licensing.api.views_files import CHUNK_BYTES
from licensing.services.file_delivery import (
    DeliveryTokenRejected,
    delivery_url,
    extract_storage,
    open_signed_file,
)

STORAGE_NAME = "extracts/7/part-00000.parquet"
DOWNLOAD_NAME = "part-00000.parquet"
# Deterministic, non-repeating content so a wrong offset cannot go unnoticed.
CONTENT = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(4096))  # 128 KiB


@pytest.fixture
def file_storage(settings: Any, tmp_path: Path) -> Any:
    settings.STORAGES = {
        **settings.STORAGES,
        "extracts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "extracts")},
        },
    }
    storage = extract_storage()
    storage.save(STORAGE_NAME, ContentFile(CONTENT))
    return storage


def relative(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def signed_path(**kwargs: Any) -> str:
    return relative(delivery_url(STORAGE_NAME, download_name=DOWNLOAD_NAME, **kwargs))


# --- the token --------------------------------------------------------------------------------


def test_a_token_round_trips_the_file_and_names(file_storage: Any) -> None:
    token = signed_path(etag="abc").rsplit("/", 1)[1]
    granted = open_signed_file(token)
    assert (granted.storage_name, granted.download_name, granted.etag) == (
        STORAGE_NAME,
        DOWNLOAD_NAME,
        "abc",
    )


def test_the_url_is_absolute_from_the_request_or_the_public_base_url(
    file_storage: Any, rf: Any, settings: Any
) -> None:
    settings.PUBLIC_BASE_URL = "https://commonplace.example"
    assert delivery_url(STORAGE_NAME, download_name=DOWNLOAD_NAME).startswith(
        "https://commonplace.example/api/v1/extract-files/"
    )
    request = rf.get("/", HTTP_HOST="testserver")
    assert delivery_url(STORAGE_NAME, download_name=DOWNLOAD_NAME, request=request).startswith(
        "http://testserver/api/v1/extract-files/"
    )


def test_a_ttl_beyond_the_configured_ceiling_is_refused(file_storage: Any) -> None:
    with pytest.raises(ValueError):
        delivery_url(STORAGE_NAME, download_name=DOWNLOAD_NAME, ttl_seconds=301)


# --- the signed file view ---------------------------------------------------------------------


def test_the_link_serves_the_exact_file_as_an_attachment(file_storage: Any) -> None:
    response = Client().get(signed_path())
    assert response.status_code == 200
    assert response.streaming
    assert body_of(response) == CONTENT
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["Content-Disposition"] == f'attachment; filename="{DOWNLOAD_NAME}"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "application/octet-stream"


def test_head_answers_the_headers_without_the_body(file_storage: Any) -> None:
    response = Client().head(signed_path())
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(CONTENT))
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len(CONTENT) - 1),
        ("bytes=-500", len(CONTENT) - 500, len(CONTENT) - 1),
        ("bytes=100-999999999", 100, len(CONTENT) - 1),  # clipped to the end
        ("bytes=-999999999", 0, len(CONTENT) - 1),  # suffix longer than the file
    ],
)
def test_a_single_range_answers_206_with_exactly_those_bytes(
    file_storage: Any, header: str, first: int, last: int
) -> None:
    response = Client().get(signed_path(), HTTP_RANGE=header)
    assert response.status_code == 206
    assert body_of(response) == CONTENT[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert response["Content-Length"] == str(last - first + 1)


@pytest.mark.parametrize(
    "header", [f"bytes={len(CONTENT)}-", "bytes=999999999-1000000000", "bytes=-0"]
)
def test_a_range_outside_the_file_is_416(file_storage: Any, header: str) -> None:
    response = Client().get(signed_path(), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert response.json()["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("header", ["bytes=0-9,20-29", "items=0-9", "bytes=9-0"])
def test_ranges_we_do_not_serve_get_the_whole_file(file_storage: Any, header: str) -> None:
    response = Client().get(signed_path(), HTTP_RANGE=header)
    assert response.status_code == 200
    assert body_of(response) == CONTENT


def test_the_etag_is_the_callers_sha256_and_if_none_match_answers_304(file_storage: Any) -> None:
    sha256 = hashlib.sha256(CONTENT).hexdigest()
    path = signed_path(etag=sha256)
    response = Client().get(path)
    assert response["ETag"] == f'"{sha256}"'
    not_modified = Client().get(path, HTTP_IF_NONE_MATCH=f'"other", "{sha256}"')
    assert not_modified.status_code == 304
    assert not_modified["ETag"] == f'"{sha256}"'
    assert Client().get(path, HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_without_a_sha256_the_etag_follows_size_and_mtime(file_storage: Any) -> None:
    path = signed_path()
    etag = Client().head(path)["ETag"]
    assert etag.startswith(f'"{len(CONTENT):x}-')
    assert Client().get(path, HTTP_IF_NONE_MATCH=etag).status_code == 304
    file_path = file_storage.path(STORAGE_NAME)
    later = time.time() + 10
    os.utime(file_path, (later, later))
    assert Client().head(path)["ETag"] != etag
    assert Client().get(path, HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_if_range_serves_the_range_only_for_the_current_file(file_storage: Any) -> None:
    path = signed_path(etag="v1")
    same = Client().get(path, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"v1"')
    assert same.status_code == 206
    assert body_of(same) == CONTENT[:10]
    changed = Client().get(path, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"v0"')
    assert changed.status_code == 200
    assert body_of(changed) == CONTENT


def test_a_tampered_link_is_403(file_storage: Any) -> None:
    path = signed_path()
    tampered = path[:-3] + ("abc" if not path.endswith("abc") else "xyz")
    response = Client().get(tampered)
    assert response.status_code == 403
    assert response.json() == {
        "code": "delivery_link_invalid",
        "detail": "This download link is not valid. Ask the API for a new one.",
    }
    assert Client().get("/api/v1/extract-files/not-a-token").status_code == 403


def test_a_link_for_another_file_cannot_be_forged_by_editing_the_payload(
    file_storage: Any,
) -> None:
    token = signed_path().rsplit("/", 1)[1]
    _, _, signature = token.partition(":")
    other = delivery_url("extracts/8/secret.parquet", download_name="x").rsplit("/", 1)[1]
    forged = other.partition(":")[0] + ":" + signature
    with pytest.raises(DeliveryTokenRejected):
        open_signed_file(forged)


def test_an_expired_link_is_403(file_storage: Any) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        path = signed_path()
    with freeze_time("2026-01-01 12:04:59"):
        assert Client().get(path).status_code == 200
    with freeze_time("2026-01-01 12:05:01"):
        response = Client().get(path)
    assert response.status_code == 403
    assert response.json()["code"] == "delivery_link_expired"


def test_a_shorter_ttl_is_honoured(file_storage: Any) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        path = signed_path(ttl_seconds=30)
    with freeze_time("2026-01-01 12:00:31"):
        assert Client().get(path).status_code == 403


def test_a_missing_file_is_404(file_storage: Any) -> None:
    path = signed_path()
    file_storage.delete(STORAGE_NAME)
    response = Client().get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "file_not_found"


def test_other_methods_are_405(file_storage: Any) -> None:
    assert Client().post(signed_path()).status_code == 405


def test_a_large_file_streams_in_small_chunks_with_flat_memory(file_storage: Any) -> None:
    size = 24 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    with open(file_storage.path(STORAGE_NAME), "wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
    response = Client().get(signed_path())
    assert response.streaming
    digest, total, largest = hashlib.sha256(), 0, 0
    tracemalloc.start()
    try:
        for chunk in response.streaming_content:
            digest.update(chunk)
            total += len(chunk)
            largest = max(largest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256(block * (size // len(block))).hexdigest()
    assert (total, digest.hexdigest()) == (size, expected)
    assert largest <= CHUNK_BYTES == 64 * 1024
    # A few chunks in flight at most; a buffered 24 MiB body would blow through this.
    assert peak < 1024 * 1024, peak


# --- S3, presigned, against moto's server on loopback -----------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_storage(settings: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    # Only loopback: no credentials, config or metadata lookups leave the machine.
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    bucket = f"extracts-{time.time_ns()}"
    boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", **credentials
    ).create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "extracts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": moto_endpoint,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "addressing_style": "path",
                "signature_version": "s3v4",
                "querystring_expire": 3600,  # delivery_url must not rely on this
            },
        },
    }
    return extract_storage()


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    assert urlsplit(url).hostname == "127.0.0.1"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_s3_files_are_served_by_a_presigned_url_of_at_most_five_minutes(s3_storage: Any) -> None:
    saved = s3_storage.save(STORAGE_NAME, ContentFile(CONTENT))
    assert saved == STORAGE_NAME

    url = delivery_url(STORAGE_NAME, download_name=DOWNLOAD_NAME)

    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["response-content-disposition"] == [f'attachment; filename="{DOWNLOAD_NAME}"']
    status, headers, body = fetch(url)
    assert status == 200
    assert body == CONTENT
    assert headers["Content-Disposition"] == f'attachment; filename="{DOWNLOAD_NAME}"'


def test_s3_urls_take_a_shorter_ttl(s3_storage: Any) -> None:
    url = delivery_url(STORAGE_NAME, download_name=DOWNLOAD_NAME, ttl_seconds=60)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["60"]
