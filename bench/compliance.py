"""Benchmark: deletion notices for a burst of new compliance events against many delivered rows.

    createdb -h 127.0.0.1 -U postgres commonplace_compliance_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/commonplace_compliance_bench
    DJANGO_DEBUG=1 .venv/bin/python manage.py migrate
    DJANGO_DEBUG=1 .venv/bin/python bench/compliance.py --licenses 10 --events 100000

Builds the synthetic corpus if needed (see bench/extract.py), then records deliveries of every
post to `--licenses` licenses straight into the delivery record (extracts and parts with their
compressed id lists, as a finished extract leaves them; writing the files is not what is measured
here), so `--licenses` x posts rows are "delivered". Then it records `--events` new compliance
events (80% post deletions, 10% accounts made private, 10% consent withdrawn for training; not
timed) and times `process_ledger`, which turns them into deletion notices. Run it on a database
of its own: it changes the corpus. A benchmark, not a test.
"""

import argparse
import os
import random
import time
from datetime import timedelta

import _setup  # noqa: F401 - configures Django first
from django.db import connection
from django.utils import timezone

from licensing.models import (
    ComplianceCursor,
    DeletionNotice,
    Extract,
    ExtractPart,
    ExtractState,
    NoticeItem,
    PartState,
)
from licensing.services import compliance
from licensing.services.delivery_record import encode_ids
from marketplace.consent.ledger import parse_message, record_and_apply
from marketplace.models import LedgerEntry, Post

PART_ROWS = 250_000


def deliver_everything(licenses: int) -> int:
    """Record every post as delivered to `licenses` licenses; returns delivered rows."""
    import extract as extract_bench  # bench/extract.py: corpus and license set-up

    existing = Extract.objects.filter(state=ExtractState.READY, manifest__bench=True).count()
    post_ids = sorted(Post.objects.values_list("platform_id", flat=True).iterator(20_000))
    chunks = [post_ids[i : i + PART_ROWS] for i in range(0, len(post_ids), PART_ROWS)]
    for _ in range(existing, licenses):
        license_ = extract_bench.bench_license(len(post_ids))
        extract = Extract.objects.create(
            organization=license_.organization,
            license=license_,
            format="parquet",
            state=ExtractState.READY,
            as_of=timezone.now(),
            record_limit=len(post_ids),
            rows_delivered=len(post_ids),
            manifest={"bench": True, "files": []},
        )
        ExtractPart.objects.bulk_create(
            ExtractPart(
                extract=extract,
                index=index,
                first_post_id=chunk[0],
                last_post_id=chunk[-1],
                rows_expected=len(chunk),
                rows_done=len(chunk),
                state=PartState.DONE,
                delivered_ids=encode_ids(chunk),
            )
            for index, chunk in enumerate(chunks)
        )
    return licenses * len(post_ids)


def record_events(count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    posts = list(Post.objects.values_list("platform_id", "author__platform_id")[:2_000_000])
    event_at = timezone.now() - timedelta(seconds=30)
    stamp = event_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    messages = []
    for _ in range(count):
        post_id, author_id = rng.choice(posts)
        roll = rng.random()
        if roll < 0.8:
            body = {"tweet": {"id": str(post_id), "author_id": str(author_id)}, "event_at": stamp}
            messages.append({"data": {"delete": body}})
        elif roll < 0.9:
            messages.append({"data": {"user_protect": {"user": {"id": str(author_id)},
                                                       "event_at": stamp}}})  # fmt: skip
        else:
            body = {"user": {"id": str(author_id)}, "event_at": stamp, "purposes": ["training"]}
            messages.append({"data": {"ai_opt_out": body}})
    for start in range(0, len(messages), 5_000):
        signals = [s for m in messages[start : start + 5_000] for s in parse_message(m)]
        record_and_apply(signals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--licenses", type=int, default=10)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7, help="another seed, other events")
    options = parser.parse_args()
    import extract as extract_bench

    print(f"machine: {os.cpu_count()} cores; database {connection.vendor} "
          f"{connection.settings_dict['NAME']}")  # fmt: skip
    extract_bench.ensure_corpus(options.posts)
    started = time.perf_counter()
    delivered = deliver_everything(options.licenses)
    print(f"delivery record: {delivered:,} delivered rows over {options.licenses} licenses "
          f"(set up in {time.perf_counter() - started:.0f}s, not timed)")  # fmt: skip

    compliance.process_ledger()  # catch up on everything before the burst (not timed)
    before = LedgerEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    started = time.perf_counter()
    record_events(options.events, seed=options.seed)
    entries = LedgerEntry.objects.filter(pk__gt=before).count()
    print(f"recorded {options.events:,} events = {entries:,} ledger entries "
          f"in {time.perf_counter() - started:.0f}s (not timed)")  # fmt: skip
    ComplianceCursor.objects.update_or_create(pk=1, defaults={"last_entry_id": before})
    items_before = NoticeItem.objects.count()
    started = time.perf_counter()
    added = compliance.process_ledger()
    elapsed = time.perf_counter() - started
    print(
        f"process_ledger: {entries:,} new ledger entries -> {added:,} notice items in "
        f"{DeletionNotice.objects.count():,} notices in {elapsed:.1f}s = "
        f"{entries / elapsed:,.0f} events/s"
    )
    assert NoticeItem.objects.count() - items_before == added


if __name__ == "__main__":
    main()
