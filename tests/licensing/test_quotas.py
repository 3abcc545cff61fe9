"""A license's caps: the record cap refuses a new extract once used up, the download cap refuses
a download that would pass it, owners and admins hear once at 80% and once at 100%, and
concurrent downloads at the boundary never pass the cap (PostgreSQL)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from licensing.models import Extract, ExtractDownload, License, QuotaAlert, UsageEvent, UsageMeter
from licensing.services import extracts, quotas
from licensing.services.downloads import AuthorizedDownload, authorize_download
from marketplace.errors import Conflict
from marketplace.models import MembershipRole
from marketplace.services.actor import Actor
from tests.faults.race import race
from tests.licensing.extract_helpers import generated_offer, licensed, run_inline

pytestmark = pytest.mark.django_db

FIRST_FILE = "part-00000.jsonl.zst"


@pytest.fixture
def offer(db: None) -> Any:
    return generated_offer()


@pytest.fixture
def small_parts(settings: Any) -> None:
    settings.EXTRACT_PART_ROWS = 100
    settings.EXTRACT_CHUNK_ROWS = 50


def start(license_: License) -> Extract:
    return extracts.start_extract(
        actor=Actor(user=license_.terms_accepted_by), license_=license_, format_="jsonl.zst"
    )


def download(license_: License, extract: Extract, file_name: str) -> AuthorizedDownload:
    return authorize_download(
        actor=Actor(user=license_.terms_accepted_by), extract=extract, file_name=file_name
    )


def file_size(extract: Extract, file_name: str) -> int:
    return next(f["bytes"] for f in extract.manifest["files"] if f["name"] == file_name)


def bytes_events(license_: License) -> int:
    return UsageEvent.objects.filter(license=license_, meter=UsageMeter.BYTES_DOWNLOADED).count()


# --- The record cap ----------------------------------------------------------------------------


def test_an_extract_cannot_start_once_the_record_cap_is_used_up(vendor: Any, offer: Any) -> None:
    license_ = licensed(vendor.organization, offer=offer, record_cap=120)
    extract = run_inline(start(license_))
    assert extract.rows_delivered == 120
    assert quotas.record_cap_usage(license_) == (120, 120)

    with pytest.raises(Conflict) as error:
        start(license_)

    assert error.value.code == "record_cap_reached"
    assert error.value.status_code == 409
    assert "record cap of 120 records is used up (120 delivered)" in error.value.detail
    assert Extract.objects.filter(license=license_).count() == 1


def test_admins_hear_at_80_and_at_100_percent_of_the_record_cap(
    vendor: Any,
    offer: Any,
    member_of: Callable[..., Any],
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    license_ = licensed(vendor.organization, offer=offer, record_cap=200)
    member_of(vendor.organization, MembershipRole.MEMBER)  # not told: not an admin
    admins = sorted(
        vendor.organization.memberships.filter(
            role__in=[MembershipRole.OWNER, MembershipRole.ADMIN]
        ).values_list("user__email", flat=True)
    )
    # Given a first, smaller extract of 170 rows (85% of the cap)...
    first = Extract.objects.create(
        organization=vendor.organization,
        license=license_,
        format="jsonl.zst",
        as_of=timezone.now(),
        record_limit=170,
    )
    with django_capture_on_commit_callbacks(execute=True):
        run_inline(first)
    assert [m.subject for m in mail.outbox] == [
        f"License {license_.pk} for {license_.dataset.title}: 80% of its records delivered cap used"
    ]
    assert mail.outbox[0].to == admins
    assert "has used 170 records of its cap of 200 records" in mail.outbox[0].body

    # ...the next extract gets the 30 rows that remain and reaches the cap.
    second = start(license_)
    assert second.record_limit == 30
    with django_capture_on_commit_callbacks(execute=True):
        run_inline(second)
    assert len(mail.outbox) == 2
    assert "100% of its records delivered cap used" in mail.outbox[1].subject
    assert "no further extract can be started" in mail.outbox[1].body
    assert sorted(
        QuotaAlert.objects.filter(license=license_).values_list("meter", "threshold_percent")
    ) == [(UsageMeter.RECORDS_DELIVERED, 80), (UsageMeter.RECORDS_DELIVERED, 100)]


def test_an_extract_that_jumps_past_80_to_100_percent_sends_one_email(
    vendor: Any, offer: Any, eager_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    license_ = licensed(vendor.organization, offer=offer, record_cap=120)
    extract = start(license_)
    with django_capture_on_commit_callbacks(execute=True):
        run_inline(extract)
    assert [m.subject.split(": ")[1] for m in mail.outbox] == [
        "100% of its records delivered cap used"
    ]
    # Both thresholds are recorded, so neither is announced again.
    assert QuotaAlert.objects.filter(license=license_).count() == 2


# --- The download cap --------------------------------------------------------------------------


def test_a_download_that_would_pass_the_byte_cap_is_refused_whole(
    vendor: Any, offer: Any, small_parts: None, settings: Any
) -> None:
    license_ = licensed(vendor.organization, offer=offer, record_cap=300)
    extract = run_inline(start(license_))
    names = [f["name"] for f in extract.manifest["files"]]
    assert len(names) == 3
    # The cap is exactly the first two files: reaching it is allowed, passing it is not.
    cap = file_size(extract, names[0]) + file_size(extract, names[1])
    settings.LICENSE_DOWNLOAD_BYTES_CAP = cap
    download(license_, extract, names[0])
    download(license_, extract, names[1])
    assert quotas.download_usage(license_) == (cap, cap)

    for refused in (names[2], extracts.MANIFEST_NAME):
        with pytest.raises(Conflict) as error:
            download(license_, extract, refused)
        assert error.value.code == "download_cap_reached"
        assert error.value.status_code == 409
        assert error.value.detail.endswith(
            f"would pass the license's download cap of {quotas.format_bytes(cap)}: "
            f"{quotas.format_bytes(cap)} has been downloaded already."
        )

    # Nothing was recorded or metered for the refused downloads.
    assert ExtractDownload.objects.filter(license=license_).count() == 2
    assert bytes_events(license_) == 2


def test_the_download_cap_answers_409_with_its_code_over_the_api(
    vendor: Any, offer: Any, settings: Any
) -> None:
    license_ = licensed(vendor.organization, offer=offer, record_cap=100)
    extract = run_inline(start(license_))
    settings.LICENSE_DOWNLOAD_BYTES_CAP = file_size(extract, FIRST_FILE) - 1
    url = f"/api/v1/orgs/{vendor.organization.slug}/extracts/{extract.pk}/files/{FIRST_FILE}"

    response = vendor.key_client.get(url)

    assert response.status_code == 409
    assert response.json()["code"] == "download_cap_reached"
    assert not ExtractDownload.objects.exists()


def test_admins_hear_once_at_80_and_once_at_100_percent_of_the_download_cap(
    vendor: Any,
    offer: Any,
    settings: Any,
    member_of: Callable[..., Any],
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    license_ = licensed(vendor.organization, offer=offer, record_cap=100)
    extract = run_inline(start(license_))
    member_of(vendor.organization, MembershipRole.BILLING)  # not told: not an admin
    size = file_size(extract, FIRST_FILE)
    settings.LICENSE_DOWNLOAD_BYTES_CAP = 5 * size  # the 4th download is 80%, the 5th 100%

    emails_after_each = []
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            download(license_, extract, FIRST_FILE)
        emails_after_each.append(len(mail.outbox))
    with pytest.raises(Conflict), django_capture_on_commit_callbacks(execute=True):
        download(license_, extract, FIRST_FILE)

    assert emails_after_each == [0, 0, 0, 1, 2]
    assert len(mail.outbox) == 2
    eighty, hundred = mail.outbox
    assert "80% of its bytes downloaded cap used" in eighty.subject
    assert f"has used {quotas.format_bytes(4 * size)} of its cap of" in eighty.body
    assert "When the cap is reached, downloads that would pass it are refused." in eighty.body
    assert "100% of its bytes downloaded cap used" in hundred.subject
    assert len(eighty.to) == 2  # the owner and the admin who requested the license
    assert vendor.admin.email in eighty.to
    assert hundred.to == eighty.to

    # Crossing again (a repeated call) or re-running the task sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            quotas.notify_if_crossed(
                license_=license_,
                meter=UsageMeter.BYTES_DOWNLOADED,
                before=0,
                after=5 * size,
                cap=5 * size,
            )
            is None
        )
    for alert in QuotaAlert.objects.filter(license=license_, meter=UsageMeter.BYTES_DOWNLOADED):
        assert alert.sent_at is not None
        assert quotas.send_quota_alert_email(alert_id=alert.pk) == 0
    assert len(mail.outbox) == 2


def test_bytes_format_for_people() -> None:
    assert [quotas.format_bytes(n) for n in (0, 1023, 1024, 1536, 50 * 1024**3)] == [
        "0 bytes",
        "1023 bytes",
        "1.0 KiB",
        "1.5 KiB",
        "50.0 GiB",
    ]


# --- Concurrent downloads at the boundary (PostgreSQL) -----------------------------------------


@pytest.mark.faults
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_downloads_at_the_boundary_never_pass_the_cap(
    vendor: Any, offer: Any, settings: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    # Two ready extracts of one license: a lock per extract would let them race past the cap.
    license_ = licensed(vendor.organization, offer=offer, record_cap=100)
    first = run_inline(start(license_))
    second = run_inline(
        Extract.objects.create(
            organization=vendor.organization,
            license=license_,
            format="jsonl.zst",
            as_of=timezone.now(),
            record_limit=100,
        )
    )
    sizes = {first.pk: file_size(first, FIRST_FILE), second.pk: file_size(second, FIRST_FILE)}
    cap = int(3.5 * max(sizes.values()))
    settings.LICENSE_DOWNLOAD_BYTES_CAP = cap
    racers = [first, second] * 4

    outcomes = race([lambda e=e: download(license_, e, FIRST_FILE) for e in racers])

    won = [o for o in outcomes if isinstance(o, AuthorizedDownload)]
    lost = [(e, o) for e, o in zip(racers, outcomes, strict=True) if isinstance(o, Conflict)]
    assert len(won) + len(lost) == len(racers), outcomes
    assert {o.code for _, o in lost} == {"download_cap_reached"}
    used = sum(o.download.bytes for o in won)
    assert used <= cap
    assert quotas.download_usage(license_) == (used, cap)
    # Every refusal was needed: the file would not have fitted in what is left.
    assert all(used + sizes[e.pk] > cap for e, _ in lost)
    assert 3 <= len(won) < len(racers)
    assert ExtractDownload.objects.filter(license=license_).count() == len(won)
    assert bytes_events(license_) == len(won)
    # Crossing 80% was recorded once, whichever download crossed it (if the winners got there).
    assert QuotaAlert.objects.filter(
        license=license_, meter=UsageMeter.BYTES_DOWNLOADED, threshold_percent=80
    ).count() == (1 if used * 100 >= cap * 80 else 0)
