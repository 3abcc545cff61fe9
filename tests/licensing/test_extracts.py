"""Extracts, run in-process through the same services the Celery tasks call: exactly the
eligible posts, shaped and pseudonymized, cut into parts, capped, reproducible and signed."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from licensing.models import Extract, ExtractPart, ExtractState, LicenseState, PartState
from licensing.services import extracts
from licensing.services.delivery import Pseudonymizer
from licensing.services.delivery_record import decode_ids, encode_ids, extracts_holding
from marketplace.errors import Conflict
from marketplace.services.actor import Actor
from tests.licensing.eligibility_oracle import expected_ids
from tests.licensing.extract_helpers import (
    canary_pseudonyms,
    delivered_records,
    file_bytes,
    generated_offer,
    licensed,
    run_inline,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer(db: None) -> Any:
    return generated_offer()


@pytest.fixture
def small_parts(settings: Any) -> None:
    settings.EXTRACT_PART_ROWS = 97
    settings.EXTRACT_CHUNK_ROWS = 40


def start(license_: Any, format_: str = "parquet") -> Extract:
    return extracts.start_extract(
        actor=Actor(user=license_.terms_accepted_by), license_=license_, format_=format_
    )


@pytest.mark.parametrize("format_", ["parquet", "jsonl.zst"])
def test_an_extract_delivers_exactly_the_eligible_posts(
    vendor: Any, offer: Any, small_parts: None, format_: str
) -> None:
    # Given an active license over a generated corpus full of deletions, opt-outs and
    # protected accounts, for a licensee in Germany
    vendor.organization.country = "DE"
    vendor.organization.save()
    license_ = licensed(vendor.organization, offer=offer, purposes=("training", "evaluation"))

    # When the extract runs
    extract = run_inline(start(license_, format_))

    # Then it holds exactly the posts an independent recomputation finds eligible, in order
    assert extract.state == ExtractState.READY
    expected = expected_ids(extract)
    assert len(expected) > 200, "the corpus must leave a real extract"
    records = delivered_records(extract)
    pseudonymize = Pseudonymizer.for_license(license_.pseudonym_key)
    assert [record["post_id"] for record in records] == [
        pseudonymize("post", post_id) for post_id in expected
    ]
    assert list(records[0]) == list(license_.fields)
    # A reference is filled only when the referenced post is itself delivered-eligible.
    eligible_pseudonyms = {pseudonymize("post", post_id) for post_id in expected}
    for record in records:
        if record["referenced_post_id"] is not None:
            assert record["referenced_post_id"] in eligible_pseudonyms
    # Parts are bounded, their files and rows add up, and they record who received what.
    parts = list(extract.parts.order_by("index"))
    assert len(parts) == -(-len(expected) // 97)
    assert all(part.rows_done <= 97 for part in parts)
    assert sum(part.rows_done for part in parts) == len(expected) == extract.rows_delivered
    delivered = [post_id for part in parts for post_id in decode_ids(bytes(part.delivered_ids))]
    assert delivered == expected
    # The files also hold the extract's canaries: counted in the manifest, never billed.
    planted = canary_pseudonyms(extract)
    assert len(planted) == settings.EXTRACT_CANARIES
    with_canaries = delivered_records(extract, canaries=True)
    assert {r["post_id"] for r in with_canaries} - {r["post_id"] for r in records} == planted
    assert all(list(record) == list(license_.fields) for record in with_canaries)
    assert extract.manifest["total_rows"] == len(with_canaries) == len(expected) + len(planted)
    assert [entry["rows"] for entry in extract.manifest["files"]] == [
        p.rows_done + p.canaries_written for p in parts
    ]


def test_the_same_license_and_instant_give_byte_identical_files(
    vendor: Any, offer: Any, small_parts: None
) -> None:
    license_ = licensed(vendor.organization, offer=offer)
    first = run_inline(start(license_))
    # A second extract of the same license at the same instant, with the same limit
    second = Extract.objects.create(
        organization=first.organization,
        license=license_,
        format=first.format,
        as_of=first.as_of,
        record_limit=first.record_limit,
    )
    second = run_inline(second)
    assert second.state == ExtractState.READY
    assert file_bytes(second) == file_bytes(first)
    assert second.manifest == first.manifest


def test_the_manifest_is_signed_and_tampering_shows(vendor: Any, offer: Any) -> None:
    license_ = licensed(vendor.organization, offer=offer)
    extract = run_inline(start(license_))
    document = extract.manifest
    assert document["signature"]["algorithm"] == "HMAC-SHA256"
    assert extracts.verify_manifest(document)
    assert document["eligibility_rules_version"]
    assert document["as_of"] == extract.as_of.isoformat()
    tampered = {**document, "total_rows": document["total_rows"] + 1}
    assert not extracts.verify_manifest(tampered)
    assert not extracts.verify_manifest({k: v for k, v in document.items() if k != "signature"})


def test_the_record_cap_stops_the_extract_in_post_id_order(
    vendor: Any, offer: Any, small_parts: None
) -> None:
    license_ = licensed(vendor.organization, offer=offer, record_cap=150)
    extract = run_inline(start(license_))
    all_eligible = expected_ids(extract)
    assert extract.record_limit == 150
    assert extract.rows_delivered == 150
    pseudonymize = Pseudonymizer.for_license(license_.pseudonym_key)
    assert [r["post_id"] for r in delivered_records(extract)] == [
        pseudonymize("post", post_id) for post_id in all_eligible[:150]
    ]
    # The cap is used up: no further extract may start.
    with pytest.raises(Conflict) as error:
        start(license_)
    assert error.value.code == "record_cap_reached"


def test_pseudonyms_are_stable_in_a_license_and_unlinkable_across_licenses(
    vendor: Any, offer: Any
) -> None:
    first_license = licensed(vendor.organization, offer=offer)
    second_license = licensed(vendor.organization, offer=offer)
    first = delivered_records(run_inline(start(first_license, "jsonl.zst")))
    second = delivered_records(run_inline(start(second_license, "jsonl.zst")))
    assert len(first) == len(second) > 0
    assert not {r["post_id"] for r in first} & {r["post_id"] for r in second}
    assert not {r["author_id"] for r in first} & {r["author_id"] for r in second}
    again = Extract.objects.create(
        organization=vendor.organization,
        license=first_license,
        format="jsonl.zst",
        as_of=timezone.now(),
        record_limit=10**6,
    )
    assert [r["post_id"] for r in delivered_records(run_inline(again))] == [
        r["post_id"] for r in first
    ]


def test_only_an_active_license_can_start_and_only_one_extract_at_a_time(
    vendor: Any, offer: Any
) -> None:
    license_ = licensed(vendor.organization, offer=offer)
    start(license_)
    with pytest.raises(Conflict) as error:
        start(license_)
    assert error.value.code == "extract_running"

    other = licensed(vendor.organization, offer=offer)
    other.ends_at = timezone.now() - timedelta(seconds=1)
    other.save()
    with pytest.raises(Conflict) as error:
        start(other)
    assert error.value.code == "license_expired"
    other.state = LicenseState.SUSPENDED
    other.ends_at = None
    other.save()
    with pytest.raises(Conflict) as error:
        start(other)
    assert error.value.code == "license_not_active"


def test_a_finished_part_is_not_redone(vendor: Any, offer: Any, small_parts: None) -> None:
    extract = start(licensed(vendor.organization, offer=offer))
    part_ids = extracts.plan_extract(extract.pk)
    assert extracts.plan_extract(extract.pk) == []  # planning twice plans nothing new
    assert extracts.run_extract_part(part_ids[0]) is True
    before = ExtractPart.objects.get(pk=part_ids[0])
    assert extracts.run_extract_part(part_ids[0]) is False
    after = ExtractPart.objects.get(pk=part_ids[0])
    assert (after.attempts, after.sha256, after.rows_done) == (
        before.attempts,
        before.sha256,
        before.rows_done,
    )


def test_a_part_with_a_live_worker_is_left_alone_and_a_dead_one_is_taken_over(
    vendor: Any, offer: Any, small_parts: None
) -> None:
    extract = start(licensed(vendor.organization, offer=offer))
    part_id = extracts.plan_extract(extract.pk)[0]
    # A worker claims the part and dies after its first heartbeat.
    lease = extracts._claim(part_id)
    assert lease is not None
    assert extracts.run_extract_part(part_id) is False  # a live lease is respected
    assert extracts.stalled_part_ids() == []
    ExtractPart.objects.filter(pk=part_id).update(
        heartbeat_at=timezone.now() - timedelta(hours=1), rows_done=40
    )
    assert extracts.stalled_part_ids() == [part_id]
    # Another worker takes it over; the dead worker's lease no longer counts.
    assert extracts.run_extract_part(part_id) is True
    part = ExtractPart.objects.get(pk=part_id)
    assert part.state == PartState.DONE and part.attempts == 2
    assert part.rows_done == len(decode_ids(bytes(part.delivered_ids)))


def test_a_cancelled_extract_stops_its_parts(vendor: Any, offer: Any, small_parts: None) -> None:
    extract = start(licensed(vendor.organization, offer=offer))
    part_ids = extracts.plan_extract(extract.pk)
    extracts.cancel_extract(actor=Actor.system(), extract=extract)
    assert extracts.run_extract_part(part_ids[0]) is False
    assert extracts.finalize_extract(extract.pk).state == ExtractState.CANCELLED
    with pytest.raises(Conflict):
        extracts.cancel_extract(actor=Actor.system(), extract=extract)


def test_a_part_that_keeps_failing_fails_the_extract_with_a_reason(
    vendor: Any, offer: Any, small_parts: None
) -> None:
    extract = start(licensed(vendor.organization, offer=offer))
    part_id = extracts.plan_extract(extract.pk)[0]
    extracts.fail_part(part_id, error="disk full")
    extract.refresh_from_db()
    assert extract.state == ExtractState.FAILED
    assert "disk full" in extract.failure_reason


def test_progress_reports_rows_parts_and_an_eta(vendor: Any, offer: Any, small_parts: None) -> None:
    extract = start(licensed(vendor.organization, offer=offer))
    part_ids = extracts.plan_extract(extract.pk)
    extracts.run_extract_part(part_ids[0])
    extract.refresh_from_db()
    progress = extracts.extract_progress(extract, now=extract.started_at + timedelta(seconds=10))
    assert progress.parts_total == len(part_ids) and progress.parts_done == 1
    assert progress.rows_done == 97 and progress.rows_estimated == extract.rows_estimated
    assert progress.eta_seconds == -(-(extract.rows_estimated - 97) * 10 // 97)


@pytest.mark.parametrize(
    "scope",
    # A keyword nothing contains; and retweets only, which the query knows cannot match.
    [{"keywords": ["zzqqxx-nothing"]}, {"kinds": ["retweet"]}],
)
def test_an_extract_with_nothing_eligible_is_ready_and_empty(
    vendor: Any, offer: Any, scope: dict[str, Any]
) -> None:
    license_ = licensed(vendor.organization, offer=offer, scope=scope)
    extract = run_inline(start(license_))
    assert extract.state == ExtractState.READY
    assert extract.rows_delivered == 0 and extract.manifest["files"] == []


def test_delivered_ids_round_trip_and_answer_who_holds_a_post(
    vendor: Any, offer: Any, small_parts: None
) -> None:
    assert decode_ids(encode_ids([])) == []
    ids = [5, 1_800_000_000_000_000_001, 1_800_000_000_000_000_002, 2**63 - 1]
    assert decode_ids(encode_ids(ids)) == ids
    extract = run_inline(start(licensed(vendor.organization, offer=offer)))
    delivered = expected_ids(extract)
    holders = extracts_holding([delivered[0], delivered[-1], 12345])
    assert holders == {delivered[0]: {extract.pk}, delivered[-1]: {extract.pk}, 12345: set()}
