"""The real `delta-sharing` connector against our server on loopback: it lists the share's
tables, loads a licensed extract into pandas with exactly the rows of the extract's files, sees a
second extract as a new version while still reading the first, and is refused a revoked token."""

import json
from pathlib import Path
from typing import Any

import delta_sharing
import pandas as pd
import pyarrow.parquet as pq
import pytest
from requests import HTTPError

from licensing.models import Extract, ExtractDownload
from licensing.services import extracts
from licensing.services.delta_sharing import build_profile
from marketplace.services.actor import Actor
from marketplace.services.api_keys import revoke_api_key
from tests.licensing.extract_helpers import generated_offer, licensed, run_inline

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # The connector honours proxy variables (requests and aiohttp's trust_env): keep every
    # request on loopback, to our live server.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")


def ready_extract(license_: Any) -> Extract:
    # Each extract uses up the cap; raise it so the next one has rows to deliver.
    license_.record_cap += 200
    license_.save(update_fields=["record_cap"])
    extract = extracts.start_extract(actor=Actor.system(), license_=license_, format_="parquet")
    return run_inline(extract)


def rows_of_files(extract: Extract) -> pd.DataFrame:
    """The extract's Parquet files read directly with pyarrow, in manifest order."""
    storage = extracts.extract_storage()
    frames = []
    for entry in extract.manifest["files"]:
        with storage.open(f"{extract.storage_prefix}/{entry['name']}", "rb") as handle:
            frames.append(pq.read_table(handle).to_pandas())
    return pd.concat(frames, ignore_index=True)


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def test_the_connector_loads_the_extract_and_sees_new_versions(
    live_server: Any, vendor: Any, tmp_path: Path
) -> None:
    license_ = licensed(vendor.organization, offer=generated_offer(), record_cap=1)
    first = ready_extract(license_)
    # The profile file as the profile route builds it (with its new key and expiry).
    profile = tmp_path / "commonplace.share"
    issued = build_profile(
        actor=Actor(user=vendor.admin),
        license_=license_,
        endpoint=f"{live_server.url}/delta-sharing",
    )
    profile.write_text(json.dumps(issued))
    table_url = f"{profile}#license-{license_.pk}.{license_.dataset.slug}.posts"

    tables = delta_sharing.SharingClient(str(profile)).list_all_tables()
    loaded = delta_sharing.load_as_pandas(table_url)

    assert [(t.share, t.schema, t.name) for t in tables] == [
        (f"license-{license_.pk}", license_.dataset.slug, "posts")
    ]
    expected = rows_of_files(first)
    assert len(loaded) == len(expected) > 0
    assert list(loaded.columns) == list(expected.columns) == first.manifest["fields"]
    assert as_records(loaded) == as_records(expected)
    assert ExtractDownload.objects.filter(extract=first).count() == len(first.manifest["files"])

    second = ready_extract(license_)
    latest = delta_sharing.load_as_pandas(table_url)
    older = delta_sharing.load_as_pandas(table_url, version=1)

    assert delta_sharing.get_table_version(table_url) == 2
    assert as_records(latest) == as_records(rows_of_files(second))
    assert as_records(latest) != as_records(expected)
    assert as_records(older) == as_records(expected)


def test_the_connector_is_refused_a_revoked_token(
    live_server: Any, vendor: Any, tmp_path: Path
) -> None:
    license_ = licensed(vendor.organization, offer=generated_offer(), record_cap=1)
    ready_extract(license_)
    profile = tmp_path / "commonplace.share"
    profile.write_text(
        json.dumps(
            {
                "shareCredentialsVersion": 1,
                "endpoint": f"{live_server.url}/delta-sharing",
                "bearerToken": vendor.raw_key,
            }
        )
    )
    revoke_api_key(actor=Actor(user=vendor.admin), api_key=vendor.api_key)

    with pytest.raises(HTTPError) as refused:
        delta_sharing.load_as_pandas(
            f"{profile}#license-{license_.pk}.{license_.dataset.slug}.posts"
        )

    assert refused.value.response.status_code == 401
    assert refused.value.response.json()["errorCode"] == "UNAUTHENTICATED"
    assert ExtractDownload.objects.count() == 0
