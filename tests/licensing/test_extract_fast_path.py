"""The columnar extract path (PostgreSQL, Parquet) writes exactly what the generic row path
writes: the same files byte for byte, the same manifest and the same delivery record, over a
generated corpus full of deletions, opt-outs, protected and private authors, mentions,
references, e-mails and phone numbers, geo and scrubbed geo."""

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db.models import Max, Min

from licensing.models import Extract, ExtractPart, ExtractState, PartState
from licensing.services import extract_columnar, extracts
from marketplace.models import LedgerEntry, Post
from tests.licensing.extract_helpers import (
    delivered_records,
    file_bytes,
    generated_offer,
    licensed,
    run_inline,
)

# A separate connection streams the COPY, so the corpus must be committed.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _extract(license_: Any, *, as_of: datetime, record_limit: int) -> Extract:
    return Extract.objects.create(
        organization=license_.organization,
        license=license_,
        format="parquet",
        as_of=as_of,
        record_limit=record_limit,
    )


def _delivery(extract: Extract) -> list[tuple[int, int, int, str, bytes]]:
    return [
        (part.index, part.rows_done, part.canaries_written, part.pseudonyms_sha256,
         bytes(part.delivered_ids))
        for part in extract.parts.order_by("index")
    ]  # fmt: skip


AWKWARD_TEXTS = [
    "",
    'line one\n\nline two\r\nthree, with "quotes" and a, comma',
    "naïve café 東京 🚀 \\. \\N NULL",
    "mail bob@example.com or call +44 20 7946 0958 or ٠١٢٣٤٥٦٧٨٩",
    "@{handle} and @nobody_known and @{handle}'s friend",
]


def _make_texts_awkward() -> None:
    """Give some posts texts that stress CSV quoting, unicode and redaction, unsorted and nested
    JSON and geo with floats and nulls (the generated corpus is plainer)."""
    posts = list(Post.objects.select_related("author").order_by("platform_id")[:60])
    for index, post in enumerate(posts):
        post.text = AWKWARD_TEXTS[index % len(AWKWARD_TEXTS)].format(handle=post.author.handle)
        if index % 7 == 0:
            post.geo = {"coordinates": [13.404954, 52.520008], "type": "Point", "z": None}
        if index % 11 == 0:
            post.public_metrics = {"zeta": 2.5, "alpha": [1, {"b": None, "a": "é"}], "m": {}}
    Post.objects.bulk_update(posts, ["text", "geo", "public_metrics"])


@pytest.mark.parametrize("instant", ["now", "mid_corpus"])
@pytest.mark.parametrize("record_limit", [10_000, 250])
def test_the_columnar_path_writes_the_generic_paths_bytes(
    vendor: Any, settings: Any, monkeypatch: Any, instant: str, record_limit: int
) -> None:
    # Given a generated corpus, a licensee in Germany, small parts and chunks, and an instant
    # that is either now or mid-corpus (later posts and ledger events must not count)
    settings.EXTRACT_PART_ROWS = 97
    settings.EXTRACT_CHUNK_ROWS = 40
    offer = generated_offer()
    vendor.organization.country = "DE"
    vendor.organization.save()
    license_ = licensed(vendor.organization, offer=offer, purposes=("training", "evaluation"))
    _make_texts_awkward()
    if instant == "now":
        as_of = LedgerEntry.objects.aggregate(last=Max("event_at"))["last"]
    else:
        bounds = Post.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
        as_of = bounds["first"] + (bounds["last"] - bounds["first"]) / 2
        assert LedgerEntry.objects.filter(event_at__gt=as_of).exists()
    assert extract_columnar.applies("parquet")

    # When the same extract runs on the columnar path and on the generic path
    columnar = run_inline(_extract(license_, as_of=as_of, record_limit=record_limit))
    monkeypatch.setattr(extract_columnar, "applies", lambda format_: False)
    generic = run_inline(_extract(license_, as_of=as_of, record_limit=record_limit))

    # Then files, manifest and delivery record are identical, and the extract is real
    assert columnar.state == generic.state == ExtractState.READY
    assert generic.rows_delivered > 97, "the extract must span several parts"
    if record_limit == 250:
        assert generic.rows_delivered == 250  # the cap cuts the last part short
    assert file_bytes(columnar) == file_bytes(generic)
    assert columnar.manifest == generic.manifest
    assert _delivery(columnar) == _delivery(generic)
    assert sum(part.canaries_written for part in generic.parts.all()) > 0
    records = delivered_records(generic)
    texts = {record["text"] for record in records}
    assert any("東京" in text for text in texts), "the awkward texts must be delivered"
    assert any("[redacted phone]" in text for text in texts)
    # Rule 5 is exercised both ways: referenced posts carried, and withheld when ineligible.
    references = [record for record in records if record["kind"] in ("quote", "reply")]
    assert any(record["referenced_post_id"] for record in references)
    assert any(record["referenced_post_id"] is None for record in references)


def test_an_extract_with_nothing_eligible_is_the_same_on_both_paths(
    vendor: Any, monkeypatch: Any
) -> None:
    # Given an extract as of before any post existed
    offer = generated_offer()
    license_ = licensed(vendor.organization, offer=offer)
    before = Post.objects.aggregate(first=Min("created_at"))["first"] - timedelta(seconds=1)
    columnar = run_inline(_extract(license_, as_of=before, record_limit=100))
    monkeypatch.setattr(extract_columnar, "applies", lambda format_: False)
    generic = run_inline(_extract(license_, as_of=before, record_limit=100))
    assert columnar.manifest == generic.manifest
    assert file_bytes(columnar) == file_bytes(generic)


def test_a_columnar_part_that_fails_midway_leaves_no_thread_and_reruns_to_the_same_bytes(
    vendor: Any, settings: Any, monkeypatch: Any
) -> None:
    # Given a columnar extract in parts of several small batches (its read-ahead, write-behind
    # and lookup threads all busy when the part fails)
    settings.EXTRACT_PART_ROWS = 400
    settings.EXTRACT_CHUNK_ROWS = 40
    monkeypatch.setattr(extract_columnar, "_CSV_BLOCK_BYTES", 4096)
    license_ = licensed(vendor.organization, offer=generated_offer())
    as_of = LedgerEntry.objects.aggregate(last=Max("event_at"))["last"]
    clean = run_inline(_extract(license_, as_of=as_of, record_limit=400))
    extract = _extract(license_, as_of=as_of, record_limit=400)
    part_id = extracts.plan_extract(extract.pk)[0]
    threads_before = threading.active_count()

    def fail(rows: int) -> None:
        if rows >= 80:
            raise RuntimeError("worker lost its disk")

    # When the part fails after two chunks
    with pytest.raises(RuntimeError, match="worker lost its disk"):
        extracts.run_extract_part(part_id, on_batch=fail)

    # Then its helper threads are gone, the part is released, and a re-run writes what a clean
    # run wrote
    assert threading.active_count() == threads_before
    assert ExtractPart.objects.get(pk=part_id).state == PartState.PENDING
    assert extracts.run_extract_part(part_id)
    extracts.finalize_extract(extract.pk)
    extract.refresh_from_db()
    assert extract.state == ExtractState.READY
    assert file_bytes(extract) == file_bytes(clean)
