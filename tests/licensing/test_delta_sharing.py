"""The Delta Sharing routes (docs/DELTA_SHARING.md): the protocol's shapes for every route, the
bearer token (missing, revoked, expired, unscoped), foreign shares, versions, metering, and
withdrawn extracts leaving the table."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from licensing.models import Extract, ExtractDownload, LicenseState, UsageEvent, UsageMeter
from licensing.services import extracts
from licensing.services.compliance import withdraw_extracts
from licensing.services.delta_sharing import schema_string
from licensing.services.extract_files import arrow_schema
from marketplace.services.actor import Actor
from marketplace.services.api_keys import create_api_key, revoke_api_key
from tests.conftest import client_for_user
from tests.factories_licensing import OfferFactory
from tests.licensing.extract_helpers import generated_offer, licensed, run_inline

pytestmark = pytest.mark.django_db

ROOT = "/delta-sharing"


@pytest.fixture
def license_(vendor: Any) -> Any:
    return licensed(vendor.organization, offer=generated_offer(), record_cap=300)


def ready_extract(license_: Any, format_: str = "parquet") -> Extract:
    # Each extract uses up the cap; raise it so the next one has rows to deliver.
    license_.record_cap += 300
    license_.save(update_fields=["record_cap"])
    extract = extracts.start_extract(actor=Actor.system(), license_=license_, format_=format_)
    return run_inline(extract)


def bearer(raw_key: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


def names(license_: Any) -> tuple[str, str, str]:
    return f"license-{license_.pk}", license_.dataset.slug, "posts"


def table_url(license_: Any, tail: str) -> str:
    share, schema, table = names(license_)
    return f"{ROOT}/shares/{share}/schemas/{schema}/tables/{table}/{tail}"


def ndjson(response: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.content.decode().splitlines()]


def test_shares_schemas_and_tables_map_the_license_its_dataset_and_its_extracts(
    vendor: Any, license_: Any
) -> None:
    client = bearer(vendor.raw_key)
    share, schema, table = names(license_)
    table_json = {
        "name": table,
        "schema": schema,
        "share": share,
        "shareId": str(license_.pk),
        "id": f"{share}-posts",
    }

    assert client.get(f"{ROOT}/shares").json() == {
        "items": [{"name": share, "id": str(license_.pk)}]
    }
    assert client.get(f"{ROOT}/shares/{share}").json() == {
        "share": {"name": share, "id": str(license_.pk)}
    }
    assert client.get(f"{ROOT}/shares/{share}/schemas").json() == {
        "items": [{"name": schema, "share": share}]
    }
    assert client.get(f"{ROOT}/shares/{share}/schemas/{schema}/tables").json() == {
        "items": [table_json]
    }
    assert client.get(f"{ROOT}/shares/{share}/all-tables").json() == {"items": [table_json]}


def test_listing_shares_pages_with_max_results_and_the_page_token(
    vendor: Any, license_: Any
) -> None:
    second = licensed(vendor.organization, offer=OfferFactory())
    client = bearer(vendor.raw_key)

    first_page = client.get(f"{ROOT}/shares", {"maxResults": 1}).json()
    second_page = client.get(
        f"{ROOT}/shares", {"maxResults": 1, "pageToken": first_page["nextPageToken"]}
    ).json()

    assert first_page["items"] == [{"name": f"license-{license_.pk}", "id": str(license_.pk)}]
    assert second_page == {"items": [{"name": f"license-{second.pk}", "id": str(second.pk)}]}
    bad = client.get(f"{ROOT}/shares", {"maxResults": "many"})
    assert bad.status_code == 400
    assert bad.json()["errorCode"] == "INVALID_PARAMETER_VALUE"


def test_version_and_metadata_describe_the_latest_ready_extract(vendor: Any, license_: Any) -> None:
    extract = ready_extract(license_)
    client = bearer(vendor.raw_key)

    version = client.get(table_url(license_, "version"))
    metadata = client.get(table_url(license_, "metadata"))

    assert version.status_code == 200 and version["Delta-Table-Version"] == "1"
    assert metadata["Delta-Table-Version"] == "1"
    assert metadata["Content-Type"].startswith("application/x-ndjson")
    protocol, meta = ndjson(metadata)
    assert protocol == {"protocol": {"minReaderVersion": 1}}
    fields = extract.manifest["fields"]
    assert meta["metaData"]["schemaString"] == schema_string(fields)
    assert meta["metaData"]["format"] == {"provider": "parquet", "options": {}}
    assert meta["metaData"]["partitionColumns"] == []
    assert meta["metaData"]["numFiles"] == len(extract.manifest["files"])
    assert meta["metaData"]["size"] == sum(f["bytes"] for f in extract.manifest["files"])


def test_the_schema_string_names_the_parquet_files_columns_and_types(license_: Any) -> None:
    extract = ready_extract(license_)
    fields = extract.manifest["fields"]
    schema = json.loads(schema_string(fields))
    arrow = arrow_schema(fields)
    assert [field["name"] for field in schema["fields"]] == arrow.names
    delta_names = {"string": "string", "bool": "boolean"}
    for field, arrow_field in zip(schema["fields"], arrow, strict=True):
        expected = delta_names.get(str(arrow_field.type)) or {
            "type": "array",
            "elementType": "string",
            "containsNull": True,
        }
        assert field["type"] == expected


def test_query_lists_every_file_with_a_signed_url_size_and_stats_and_meters_it(
    vendor: Any, license_: Any
) -> None:
    extract = ready_extract(license_)
    client = bearer(vendor.raw_key)

    response = client.post(table_url(license_, "query"), {}, content_type="application/json")

    assert response.status_code == 200 and response["Delta-Table-Version"] == "1"
    lines = ndjson(response)
    assert list(lines[0]) == ["protocol"] and list(lines[1]) == ["metaData"]
    files = [line["file"] for line in lines[2:]]
    manifest_files = extract.manifest["files"]
    assert [f["size"] for f in files] == [entry["bytes"] for entry in manifest_files]
    assert [f["id"] for f in files] == [entry["sha256"] for entry in manifest_files]
    parts = {part.file_name: part for part in extract.parts.all()}
    assert [json.loads(f["stats"])["numRecords"] for f in files] == [
        parts[e["name"]].rows_done + parts[e["name"]].canaries_written for e in manifest_files
    ]
    for file, entry in zip(files, manifest_files, strict=True):
        fetched = Client().get(file["url"].removeprefix("http://testserver"))
        assert fetched.status_code == 200
        assert len(b"".join(fetched.streaming_content)) == entry["bytes"]
    downloads = ExtractDownload.objects.filter(extract=extract)
    assert sorted(downloads.values_list("file_name", flat=True)) == sorted(
        entry["name"] for entry in manifest_files
    )
    assert set(downloads.values_list("api_key_prefix", flat=True)) == {vendor.api_key.prefix}
    metered = UsageEvent.objects.filter(license=license_, meter=UsageMeter.BYTES_DOWNLOADED)
    assert sum(metered.values_list("quantity", flat=True)) == sum(
        entry["bytes"] for entry in manifest_files
    )


@override_settings(EXTRACT_MAX_DOWNLOADS_PER_FILE=1)
def test_each_query_is_a_download_of_each_file_under_the_per_file_quota(
    vendor: Any, license_: Any
) -> None:
    extract = ready_extract(license_)
    client = bearer(vendor.raw_key)

    first = client.post(table_url(license_, "query"), {}, "application/json")
    second = client.post(table_url(license_, "query"), {}, "application/json")

    assert first.status_code == 200
    assert second.status_code == 403
    assert second.json()["errorCode"] == "PERMISSION_DENIED"
    assert ExtractDownload.objects.filter(extract=extract).count() == len(extract.manifest["files"])


def test_a_second_extract_is_a_new_version_and_the_first_stays_readable(
    vendor: Any, license_: Any
) -> None:
    first = ready_extract(license_)
    second = ready_extract(license_)
    client = bearer(vendor.raw_key)

    assert client.get(table_url(license_, "version"))["Delta-Table-Version"] == "2"
    old = client.post(table_url(license_, "query"), {"version": 1}, "application/json")
    assert old["Delta-Table-Version"] == "1"
    assert [line["file"]["id"] for line in ndjson(old)[2:]] == [
        entry["sha256"] for entry in first.manifest["files"]
    ]
    assert ExtractDownload.objects.filter(extract=second).count() == 0


def test_a_withdrawn_extract_leaves_the_table_and_the_next_extract_is_a_new_version(
    vendor: Any, license_: Any
) -> None:
    first = ready_extract(license_)
    withdraw_extracts([first.pk], now=timezone.now())
    client = bearer(vendor.raw_key)

    gone = client.get(table_url(license_, "version"))
    asked = client.post(table_url(license_, "query"), {"version": 1}, "application/json")
    ready_extract(license_)
    current = client.get(table_url(license_, "version"))

    assert gone.status_code == 404 and gone.json()["errorCode"] == "RESOURCE_DOES_NOT_EXIST"
    assert asked.status_code == 404
    assert current["Delta-Table-Version"] == "2"


def test_a_json_lines_extract_is_not_a_table_version(vendor: Any, license_: Any) -> None:
    ready_extract(license_, "parquet")
    ready_extract(license_, "jsonl.zst")
    client = bearer(vendor.raw_key)

    assert client.get(table_url(license_, "version"))["Delta-Table-Version"] == "1"
    asked = client.post(table_url(license_, "query"), {"version": 2}, "application/json")
    assert asked.status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1]", 400),
        (b'{"version": "one"}', 400),
        (b'{"version": -1}', 400),
        (b'{"timestamp": "2026-01-01T00:00:00Z"}', 400),
        (b'{"version": 99}', 404),
        (b'{"limitHint": 1, "predicateHints": ["post_id = 1"]}', 200),
    ],
)
def test_query_bodies_are_checked_and_hints_ignored(
    vendor: Any, license_: Any, body: bytes, status: int
) -> None:
    ready_extract(license_)
    response = bearer(vendor.raw_key).post(
        table_url(license_, "query"), body, content_type="application/json"
    )
    assert response.status_code == status
    if status != 200:
        assert set(response.json()) == {"errorCode", "message"}


def test_a_missing_or_malformed_token_is_401(license_: Any) -> None:
    missing = Client().get(f"{ROOT}/shares")
    wrong_scheme = Client(headers={"Authorization": "Basic abc"}).get(f"{ROOT}/shares")
    unknown = bearer("cpk_aaaaaaaaaaaa_nope").get(f"{ROOT}/shares")
    for response in (missing, wrong_scheme, unknown):
        assert response.status_code == 401
        assert response.json()["errorCode"] == "UNAUTHENTICATED"


def test_a_revoked_token_is_401(vendor: Any, license_: Any) -> None:
    revoke_api_key(actor=Actor(user=vendor.admin), api_key=vendor.api_key)
    response = bearer(vendor.raw_key).get(f"{ROOT}/shares")
    assert response.status_code == 401
    assert response.json()["errorCode"] == "UNAUTHENTICATED"


def test_an_expired_token_is_401(vendor: Any, license_: Any) -> None:
    vendor.api_key.expires_at = timezone.now() - timedelta(seconds=1)
    vendor.api_key.save()
    response = bearer(vendor.raw_key).get(f"{ROOT}/shares")
    assert response.status_code == 401


def test_a_key_without_the_download_scope_is_403(vendor: Any, license_: Any) -> None:
    _, raw = create_api_key(
        actor=Actor(user=vendor.admin), organization=vendor.organization, name="r", scopes=["read"]
    )
    response = bearer(raw).get(f"{ROOT}/shares")
    assert response.status_code == 403
    assert response.json()["errorCode"] == "PERMISSION_DENIED"


def test_another_organizations_license_does_not_exist(
    vendor: Any, other_vendor: Any, license_: Any
) -> None:
    ready_extract(license_)
    client = bearer(other_vendor.raw_key)
    share, schema, _ = names(license_)

    assert client.get(f"{ROOT}/shares").json() == {"items": []}
    for url in (
        f"{ROOT}/shares/{share}",
        f"{ROOT}/shares/{share}/schemas",
        f"{ROOT}/shares/{share}/schemas/{schema}/tables",
        f"{ROOT}/shares/{share}/all-tables",
        table_url(license_, "version"),
        table_url(license_, "metadata"),
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["errorCode"] == "RESOURCE_DOES_NOT_EXIST"
    query = client.post(table_url(license_, "query"), {}, "application/json")
    assert query.status_code == 404
    assert ExtractDownload.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "/shares/license-x",
        "/shares/nope",
        "/shares/{share}/schemas/other/tables",
        "/shares/{share}/schemas/{schema}/tables/other/version",
    ],
)
def test_unknown_names_are_404(vendor: Any, license_: Any, url: str) -> None:
    share, schema, _ = names(license_)
    response = bearer(vendor.raw_key).get(ROOT + url.format(share=share, schema=schema))
    assert response.status_code == 404
    assert response.json()["errorCode"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_suspended_license_is_listed_but_its_files_are_refused(
    vendor: Any, license_: Any
) -> None:
    ready_extract(license_)
    license_.state = LicenseState.SUSPENDED
    license_.save()
    client = bearer(vendor.raw_key)

    response = client.post(table_url(license_, "query"), {}, "application/json")

    assert client.get(f"{ROOT}/shares").json()["items"] == [
        {"name": f"license-{license_.pk}", "id": str(license_.pk)}
    ]
    assert response.status_code == 403
    assert response.json()["errorCode"] == "PERMISSION_DENIED"
    assert ExtractDownload.objects.count() == 0


def test_the_profile_route_issues_a_download_key_for_admins_only(
    vendor: Any, license_: Any, member_of: Any
) -> None:
    url = f"/api/v1/orgs/{vendor.organization.slug}/licenses/{license_.pk}/delta-sharing-profile/"

    response = vendor.admin_client.post(url)
    by_key = vendor.key_client.post(url)

    assert response.status_code == 201
    profile = response.json()
    assert set(profile) == {"shareCredentialsVersion", "endpoint", "bearerToken", "expirationTime"}
    assert profile["shareCredentialsVersion"] == 1
    assert profile["endpoint"] == "http://testserver/delta-sharing"
    assert response["Content-Disposition"] == f'attachment; filename="license-{license_.pk}.share"'
    shares = bearer(profile["bearerToken"]).get(f"{ROOT}/shares")
    assert shares.status_code == 200
    assert by_key.status_code == 403
    member = member_of(vendor.organization, "member").user
    assert client_for_user(member).post(url).status_code == 403


def test_a_profiles_token_reaches_its_own_license_only(vendor: Any, license_: Any) -> None:
    other = licensed(vendor.organization, offer=OfferFactory())
    other_extract = ready_extract(other)
    ready_extract(license_)
    org = vendor.organization.slug
    profile = vendor.admin_client.post(
        f"/api/v1/orgs/{org}/licenses/{license_.pk}/delta-sharing-profile/"
    ).json()
    client = bearer(profile["bearerToken"])
    other_share = f"license-{other.pk}"
    key_client = Client(headers={"Authorization": f"Api-Key {profile['bearerToken']}"})
    other_file = other_extract.manifest["files"][0]["name"]

    assert client.get(f"{ROOT}/shares").json()["items"] == [
        {"name": f"license-{license_.pk}", "id": str(license_.pk)}
    ]
    assert client.get(f"{ROOT}/shares/{other_share}").status_code == 404
    assert client.post(table_url(other, "query"), {}, "application/json").status_code == 404
    assert client.post(table_url(license_, "query"), {}, "application/json").status_code == 200
    # Through the plain download route too: the other license's files do not exist for it.
    refused = key_client.get(f"/api/v1/orgs/{org}/extracts/{other_extract.pk}/files/{other_file}")
    assert refused.status_code == 404
    assert not ExtractDownload.objects.filter(extract=other_extract).exists()
    # The organization's own download key (not bound) still reaches both shares.
    assert len(bearer(vendor.raw_key).get(f"{ROOT}/shares").json()["items"]) == 2
