"""The extract routes: start (202), one at a time (409), progress, cancel, and metered
downloads through a short-lived signed URL."""

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import override_settings
from freezegun import freeze_time

from licensing.models import Extract, ExtractDownload, ExtractState, LicenseState
from licensing.services import extracts
from marketplace.services.actor import Actor
from marketplace.services.api_keys import create_api_key
from tests.conftest import client_for_key
from tests.licensing.extract_helpers import generated_offer, licensed, run_inline

pytestmark = pytest.mark.django_db


@pytest.fixture
def license_(vendor: Any) -> Any:
    return licensed(vendor.organization, offer=generated_offer(), record_cap=300)


def start_url(vendor: Any, license_: Any) -> str:
    return f"/api/v1/orgs/{vendor.organization.slug}/licenses/{license_.pk}/extracts/"


def extract_url(vendor: Any, extract_id: int, tail: str = "") -> str:
    return f"/api/v1/orgs/{vendor.organization.slug}/extracts/{extract_id}/{tail}"


def test_starting_an_extract_answers_202_and_a_second_one_409(vendor: Any, license_: Any) -> None:
    response = vendor.key_client.post(start_url(vendor, license_), {"format": "parquet"})
    assert response.status_code == 202, response.data
    assert response.data["state"] == "queued"
    assert response.data["record_limit"] == 300
    again = vendor.key_client.post(start_url(vendor, license_), {"format": "jsonl.zst"})
    assert again.status_code == 409
    assert again.data["code"] == "extract_running"


@pytest.mark.parametrize(
    ("body", "field"), [({}, "format"), ({"format": "csv"}, "format"), ({"format": 3}, "format")]
)
def test_a_bad_format_is_a_400_naming_the_field(
    vendor: Any, license_: Any, body: dict[str, Any], field: str
) -> None:
    response = vendor.key_client.post(start_url(vendor, license_), body)
    assert response.status_code == 400
    assert field in response.data["fields"]


def test_a_key_without_the_extract_scope_cannot_start_one(vendor: Any, license_: Any) -> None:
    _, raw = create_api_key(
        actor=Actor(user=vendor.admin), organization=vendor.organization, name="r", scopes=["read"]
    )
    response = client_for_key(raw).post(start_url(vendor, license_), {"format": "parquet"})
    assert response.status_code == 403
    assert response.data["code"] == "missing_scope"


def test_an_inactive_license_cannot_start_an_extract(vendor: Any, license_: Any) -> None:
    license_.state = LicenseState.SUSPENDED
    license_.save()
    response = vendor.key_client.post(start_url(vendor, license_), {"format": "parquet"})
    assert response.status_code == 409
    assert response.data["code"] == "license_not_active"


def test_progress_files_and_manifest_show_on_the_extract(vendor: Any, license_: Any) -> None:
    started = vendor.key_client.post(start_url(vendor, license_), {"format": "parquet"}).data
    queued = vendor.key_client.get(extract_url(vendor, started["id"])).data
    assert queued["progress"]["parts_total"] == 0 and queued["files"] == []
    run_inline(Extract.objects.get(pk=started["id"]))
    body = vendor.key_client.get(extract_url(vendor, started["id"])).data
    assert body["state"] == "ready"
    assert body["progress"]["rows_done"] == body["rows_delivered"] == 300
    assert body["progress"]["parts_done"] == body["progress"]["parts_total"] >= 1
    assert [f["name"] for f in body["files"]] == ["part-00000.parquet"]
    # The manifest counts rows as in the files: the 300 records and the extract's canaries.
    assert body["manifest"]["total_rows"] == 300 + settings.EXTRACT_CANARIES
    listed = vendor.key_client.get(f"/api/v1/orgs/{vendor.organization.slug}/extracts/?state=ready")
    assert [item["id"] for item in listed.data["results"]] == [started["id"]]


def test_cancel_stops_an_open_extract_and_is_409_afterwards(vendor: Any, license_: Any) -> None:
    started = vendor.key_client.post(start_url(vendor, license_), {"format": "parquet"}).data
    cancelled = vendor.key_client.post(extract_url(vendor, started["id"], "cancel/"))
    assert cancelled.status_code == 200 and cancelled.data["state"] == "cancelled"
    again = vendor.key_client.post(extract_url(vendor, started["id"], "cancel/"))
    assert again.status_code == 409
    # A new extract may start once the old one is no longer open.
    assert (
        vendor.key_client.post(start_url(vendor, license_), {"format": "parquet"}).status_code
        == 202
    )


@pytest.fixture
def ready_extract(vendor: Any, license_: Any) -> Extract:
    extract = extracts.start_extract(
        actor=Actor(user=vendor.admin), license_=license_, format_="jsonl.zst"
    )
    return run_inline(extract)


def test_a_download_is_metered_and_redirects_to_a_short_lived_url(
    vendor: Any, ready_extract: Extract
) -> None:
    url = extract_url(vendor, ready_extract.pk, "files/part-00000.jsonl.zst")
    response = vendor.key_client.get(url)
    assert response.status_code == 302
    download = ExtractDownload.objects.get()
    assert (download.file_name, download.records) == ("part-00000.jsonl.zst", 300)
    assert download.bytes == ready_extract.manifest["files"][0]["bytes"]
    assert download.api_key_prefix == vendor.api_key.prefix
    # The signed URL serves the exact file, without any credentials.
    location = urlsplit(response["Location"])
    served = vendor.key_client.__class__().get(f"{location.path}?{location.query}")
    assert served.status_code == 200
    body = b"".join(served.streaming_content)
    with extracts.extract_storage().open(
        f"{ready_extract.storage_prefix}/part-00000.jsonl.zst", "rb"
    ) as handle:
        assert body == handle.read()


def test_an_expired_or_tampered_url_is_403(vendor: Any, ready_extract: Extract) -> None:
    with freeze_time("2026-01-01 12:00:00"):
        response = vendor.key_client.get(
            extract_url(vendor, ready_extract.pk, "files/part-00000.jsonl.zst")
        )
    location = urlsplit(response["Location"])
    anonymous = vendor.key_client.__class__()
    with freeze_time("2026-01-01 12:05:01"):
        expired = anonymous.get(f"{location.path}?{location.query}")
    assert expired.status_code == 403
    tampered_path = location.path[:-3] + ("abc" if not location.path.endswith("abc") else "xyz")
    assert anonymous.get(f"{tampered_path}?{location.query}").status_code == 403


def test_downloads_need_the_download_scope_a_ready_extract_and_a_known_file(
    vendor: Any, license_: Any, ready_extract: Extract
) -> None:
    _, raw = create_api_key(
        actor=Actor(user=vendor.admin),
        organization=vendor.organization,
        name="x",
        scopes=["extract"],
    )
    url = extract_url(vendor, ready_extract.pk, "files/part-00000.jsonl.zst")
    assert client_for_key(raw).get(url).status_code == 403
    missing = vendor.key_client.get(extract_url(vendor, ready_extract.pk, "files/nope.parquet"))
    assert missing.status_code == 404 and missing.data["code"] == "file_not_found"
    license_.refresh_from_db()
    license_.state = LicenseState.SUSPENDED
    license_.save()
    assert vendor.key_client.get(url).status_code == 409
    assert not ExtractDownload.objects.exists()


@override_settings(EXTRACT_MAX_DOWNLOADS_PER_FILE=2)
def test_the_download_quota_per_file_holds(vendor: Any, ready_extract: Extract) -> None:
    url = extract_url(vendor, ready_extract.pk, "files/manifest.json")
    assert [vendor.key_client.get(url).status_code for _ in range(3)] == [302, 302, 409]
    assert ExtractDownload.objects.count() == 2


def test_files_of_an_unfinished_extract_cannot_be_downloaded(vendor: Any, license_: Any) -> None:
    extract = extracts.start_extract(
        actor=Actor(user=vendor.admin), license_=license_, format_="parquet"
    )
    assert extract.state == ExtractState.QUEUED
    response = vendor.key_client.get(extract_url(vendor, extract.pk, "files/manifest.json"))
    assert response.status_code == 409 and response.data["code"] == "extract_not_ready"
