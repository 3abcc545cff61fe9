"""Fault: many downloads of one license at once when the download cap has room for exactly N
more. Exactly N succeed, each is metered exactly once (bytes and records), none passes the cap
(PostgreSQL: the license row lock serializes them)."""

from typing import Any

import pytest
from django.db.models import Sum

from licensing.models import ExtractDownload, UsageEvent, UsageMeter
from licensing.services import quotas
from licensing.services.downloads import AuthorizedDownload, authorize_download
from marketplace.errors import Conflict
from marketplace.services.actor import Actor
from tests.faults.race import race
from tests.licensing.extract_helpers import generated_offer, licensed, run_inline
from tests.licensing.test_quotas import FIRST_FILE, file_size, start

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOM_FOR = 3
RACERS = 8


def test_exactly_n_concurrent_downloads_fit_and_each_is_metered_once(
    vendor: Any, settings: Any
) -> None:
    # Given: a ready extract, and a cap that leaves room for exactly ROOM_FOR downloads of a file
    settings.EXTRACT_PART_ROWS = 100
    settings.EXTRACT_MAX_DOWNLOADS_PER_FILE = RACERS * 2  # only the byte cap may refuse
    license_ = licensed(vendor.organization, offer=generated_offer(), record_cap=100)
    extract = run_inline(start(license_))
    size = file_size(extract, FIRST_FILE)
    rows = extract.parts.get(file_name=FIRST_FILE).rows_done
    settings.LICENSE_DOWNLOAD_BYTES_CAP = ROOM_FOR * size
    actor = Actor(user=license_.terms_accepted_by)

    # When: RACERS downloads of that file start at the same instant
    outcomes = race(
        [
            lambda: authorize_download(actor=actor, extract=extract, file_name=FIRST_FILE)
            for _ in range(RACERS)
        ]
    )

    # Then: exactly ROOM_FOR succeed, the others are refused with the cap's code
    won = [o for o in outcomes if isinstance(o, AuthorizedDownload)]
    lost = [o for o in outcomes if isinstance(o, Conflict)]
    assert (len(won), len(lost)) == (ROOM_FOR, RACERS - ROOM_FOR), outcomes
    assert {o.code for o in lost} == {"download_cap_reached"}
    # Nothing overshot: the cap is used exactly, by the recorded downloads.
    assert quotas.download_usage(license_) == (ROOM_FOR * size, ROOM_FOR * size)
    downloads = set(ExtractDownload.objects.filter(license=license_).values_list("pk", flat=True))
    assert downloads == {o.download.pk for o in won}
    # Each download metered exactly once per meter, keyed by the download.
    metered = (
        (UsageMeter.BYTES_DOWNLOADED, "bytes", size),
        (UsageMeter.RECORDS_DELIVERED, "records", rows),
    )
    for meter, suffix, quantity in metered:
        events = UsageEvent.objects.filter(license=license_, meter=meter)
        assert sorted(events.values_list("idempotency_key", flat=True)) == sorted(
            f"download:{pk}:{suffix}" for pk in downloads
        )
        assert events.aggregate(total=Sum("quantity"))["total"] == ROOM_FOR * quantity
    # And the next download is refused too: the cap is full.
    with pytest.raises(Conflict) as refused:
        authorize_download(actor=actor, extract=extract, file_name=FIRST_FILE)
    assert refused.value.code == "download_cap_reached"
    assert ExtractDownload.objects.filter(license=license_).count() == ROOM_FOR
