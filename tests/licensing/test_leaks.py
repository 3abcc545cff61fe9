"""Canary records and leak attribution: a 1% sample names its license, a canary names its
extract, a file mixing two licensees' records names both, in every file format."""

import csv
import io
import random
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from django.core.management import call_command

from licensing.models import Canary
from licensing.services import extracts, leaks
from marketplace.services.actor import Actor
from tests.factories import OrganizationFactory
from tests.licensing.extract_helpers import (
    delivered_records,
    generated_offer,
    licensed,
    run_inline,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_deliveries(db: None) -> tuple[Any, Any]:
    offer = generated_offer()
    done = []
    for _ in range(2):
        license_ = licensed(OrganizationFactory(), offer=offer)
        extract = extracts.start_extract(
            actor=Actor(user=license_.terms_accepted_by), license_=license_, format_="jsonl.zst"
        )
        done.append(run_inline(extract))
    return done[0], done[1]


def post_pseudonyms(records: list[dict[str, Any]]) -> set[str]:
    """The posts a set of records shows: their own and the ones they quote or reply to."""
    return {r["post_id"] for r in records} | {
        r["referenced_post_id"] for r in records if r["referenced_post_id"]
    }


def sample(records: list[dict[str, Any]], share: float, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return rng.sample(records, max(1, int(len(records) * share)))


def test_a_one_percent_sample_names_its_license_and_no_other(two_deliveries: Any) -> None:
    first, _ = two_deliveries
    leaked = sample(delivered_records(first), 0.01)
    assert len(leaked) >= 5
    [found] = leaks.attribute(leaks.material_from_records(leaked))
    assert found.license_id == first.license_id
    assert found.confidence == "high" and found.pseudonyms == len(post_pseudonyms(leaked))
    assert found.extract_ids == {first.pk}


def test_a_canary_alone_names_the_extract_with_certainty(two_deliveries: Any) -> None:
    first, _ = two_deliveries
    canary = Canary.objects.filter(extract=first).first()
    [found] = leaks.attribute(leaks.material_from_lines([canary.post_pseudonym]))
    assert (found.license_id, found.confidence, found.extract_ids) == (
        first.license_id,
        "certain",
        {first.pk},
    )
    # Canaries are shaped like real records: same keys, ids in the same form.
    records = delivered_records(first, canaries=True)
    planted = next(r for r in records if r["post_id"] == canary.post_pseudonym)
    real = next(r for r in records if r["post_id"] != canary.post_pseudonym)
    assert list(planted) == list(real)
    assert {k: type(v) for k, v in planted.items() if v is not None} == {
        k: type(v) for k, v in real.items() if v is not None and planted.get(k) is not None
    }


def test_a_file_mixing_two_licensees_names_both_with_their_own_evidence(
    two_deliveries: Any,
) -> None:
    first, second = two_deliveries
    from_first = sample(delivered_records(first), 0.02, seed=2)
    from_second = sample(delivered_records(second), 0.05, seed=3)
    attributions = leaks.attribute(leaks.material_from_records(from_first + from_second))
    found = {entry.license_id: entry for entry in attributions}
    assert set(found) == {first.license_id, second.license_id}
    assert found[first.license_id].pseudonyms == len(post_pseudonyms(from_first))
    assert found[second.license_id].pseudonyms == len(post_pseudonyms(from_second))
    assert attributions[0].license_id == second.license_id  # more evidence first


def test_texts_alone_point_weakly_at_every_license_holding_the_posts(
    two_deliveries: Any,
) -> None:
    first, second = two_deliveries
    texts = [r["text"] for r in delivered_records(first)[:20] if "[redacted" not in r["text"]]
    found = leaks.attribute(leaks.material_from_lines(texts))
    assert {entry.license_id for entry in found} == {first.license_id, second.license_id}
    assert {entry.confidence for entry in found} == {"low"}


def test_nothing_of_ours_matches_nothing(two_deliveries: Any) -> None:
    assert leaks.attribute(leaks.material_from_lines(["0" * 32, "a text never delivered"])) == []


@pytest.mark.parametrize("file_format", ["parquet", "jsonl", "jsonl.zst", "csv", "ids"])
def test_the_command_reads_every_file_format(
    two_deliveries: Any, tmp_path: Path, file_format: str
) -> None:
    first, _ = two_deliveries
    leaked = sample(delivered_records(first), 0.01)
    path = tmp_path / f"leak.{file_format}"
    lines = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in leaked)
    if file_format == "parquet":
        table = pa.Table.from_pylist([{"post_id": r["post_id"], "text": r["text"]} for r in leaked])
        pq.write_table(table, path)
    elif file_format == "jsonl":
        path.write_bytes(lines)
    elif file_format == "jsonl.zst":
        path.write_bytes(zstandard.ZstdCompressor().compress(lines))
    elif file_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["post_id", "author_id", "text"])
        writer.writeheader()
        for r in leaked:
            writer.writerow({name: r[name] for name in ("post_id", "author_id", "text")})
        path.write_text(buffer.getvalue())
    else:
        path.write_text("\n".join(r["post_id"] for r in leaked) + "\n")
    out = io.StringIO()
    call_command("attribute_leak", str(path), stdout=out)
    report = orjson.loads(out.getvalue())
    assert report["attributions"][0]["license"] == first.license_id
    assert report["attributions"][0]["confidence"] == "high"


def test_the_operator_api_attributes_and_refuses_vendors(
    two_deliveries: Any, operator: Any, vendor: Any
) -> None:
    first, _ = two_deliveries
    ids = [r["post_id"] for r in sample(delivered_records(first), 0.01)]
    response = operator.admin_client.post("/api/v1/review/leaks/", {"ids": ids}, format="json")
    assert response.status_code == 200, response.data
    [found] = response.data["attributions"]
    assert found["license"] == first.license_id
    assert found["evidence"]["pseudonyms_matched"] == len(ids) == response.data["ids_read"]
    empty = operator.admin_client.post("/api/v1/review/leaks/", {}, format="json")
    assert empty.status_code == 400
    refused = vendor.admin_client.post("/api/v1/review/leaks/", {"ids": ids}, format="json")
    assert refused.status_code == 403
