"""A license's caps: how much of each is used, refusing what would pass one, and telling the
organization's owners and admins when usage crosses 80% and 100% of a cap.

The caps:

- Records: the license's `record_cap`, frozen from the approved request. Rows delivered by
  ready extracts count against it (canaries never do). `start_extract` refuses once it is used
  up (`record_cap_reached`) and limits each extract to what remains, so it is never passed.
- Download bytes: `settings.LICENSE_DOWNLOAD_BYTES_CAP` (50 GiB unless the environment says
  otherwise), the same for every license. Every recorded download counts its file's bytes,
  manifests included - the same figure as the `bytes_downloaded` meter. A download that would
  pass the cap is refused whole (`download_cap_reached`): a file cannot be half-delivered.
  `authorize_download` checks it with the license row locked, so concurrent downloads of one
  license are serialized and the cap holds exactly.

Alerts: one `QuotaAlert` row per license, meter and threshold, written in the transaction that
crossed it; the e-mail is queued after commit and sent by a Celery task.
"""

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from licensing.models import Extract, ExtractDownload, ExtractState, License, UsageMeter
from licensing.models.quotas import QuotaAlert
from marketplace.errors import Conflict
from marketplace.models import ADMIN_ROLES, Membership

ALERT_THRESHOLDS_PERCENT = (80, 100)

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(size: int) -> str:
    """`53687091200` -> `50.0 GiB`; below 1 KiB, exact bytes."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in _UNITS[1:]:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def _amount(meter: str, quantity: int) -> str:
    if meter == UsageMeter.BYTES_DOWNLOADED:
        return format_bytes(quantity)
    return f"{quantity:,} records"


# --- Reading -----------------------------------------------------------------------------------


def record_cap_usage(license_: License) -> tuple[int, int]:
    """(rows delivered by the license's ready extracts, its record cap)."""
    total = Extract.objects.filter(license=license_, state=ExtractState.READY).aggregate(
        rows=Sum("rows_delivered")
    )["rows"]
    return int(total or 0), int(license_.record_cap)


def download_usage(license_: License) -> tuple[int, int]:
    """(bytes downloaded under the license so far, the download cap in bytes)."""
    total = ExtractDownload.objects.filter(license=license_).aggregate(size=Sum("bytes"))["size"]
    return int(total or 0), int(settings.LICENSE_DOWNLOAD_BYTES_CAP)


# --- Enforcing ---------------------------------------------------------------------------------


def ensure_download_fits(license_: License, *, file_name: str, size: int) -> tuple[int, int]:
    """Raise `download_cap_reached` (409) if downloading `size` more bytes would pass the
    license's download cap; return (bytes used before, cap). The caller must hold the license
    row's lock until it has recorded the download, or two downloads could both fit."""
    used, cap = download_usage(license_)
    if used + size > cap:
        raise Conflict(
            f"Downloading {file_name} ({format_bytes(size)}) would pass the license's download "
            f"cap of {format_bytes(cap)}: {format_bytes(used)} has been downloaded already.",
            code="download_cap_reached",
        )
    return used, cap


# --- Alerts ------------------------------------------------------------------------------------


def _reached(used: int, cap: int, percent: int) -> bool:
    return used * 100 >= cap * percent  # integers: no rounding at the boundary


def notify_if_crossed(
    *, license_: License, meter: str, before: int, after: int, cap: int
) -> QuotaAlert | None:
    """Record each threshold (80%, 100% of `cap`) that usage crossed going from `before` to
    `after`, and queue one e-mail to the organization's owners and admins, after commit, about
    the highest one newly recorded. Each threshold is announced at most once per license and
    meter (a unique row), however often this runs; returns the alert e-mailed about, if any.
    Call it inside the transaction that records the usage."""
    if cap <= 0:
        return None
    newest: QuotaAlert | None = None
    for percent in ALERT_THRESHOLDS_PERCENT:
        if _reached(before, cap, percent) or not _reached(after, cap, percent):
            continue
        alert, created = QuotaAlert.objects.get_or_create(
            license=license_,
            meter=meter,
            threshold_percent=percent,
            defaults={"used": after, "cap": cap},
        )
        if created:
            newest = alert
    if newest is not None:
        from licensing import tasks  # the tasks module imports this one

        alert_id = newest.pk
        transaction.on_commit(lambda: tasks.send_quota_alert.delay(alert_id))
    return newest


_CONSEQUENCES = {
    UsageMeter.RECORDS_DELIVERED: "no further extract can be started under this license",
    UsageMeter.BYTES_DOWNLOADED: "downloads that would pass it are refused",
}


def send_quota_alert_email(*, alert_id: int) -> int:
    """E-mail the license's organization's owners and admins about a crossed threshold; returns
    the number of recipients. Sends once: the alert is claimed by setting `sent_at`, which is
    cleared again if sending fails, so a retry sends it and a repeated task does not."""
    alert = QuotaAlert.objects.select_related("license__organization", "license__dataset").get(
        pk=alert_id
    )
    claimed = QuotaAlert.objects.filter(pk=alert.pk, sent_at__isnull=True).update(
        sent_at=timezone.now()
    )
    if not claimed:
        return 0
    license_ = alert.license
    recipients = sorted(
        Membership.objects.filter(
            organization=license_.organization, role__in=ADMIN_ROLES
        ).values_list("user__email", flat=True)
    )
    if not recipients:
        return 0
    label = UsageMeter(alert.meter).label.lower()
    consequence = _CONSEQUENCES.get(UsageMeter(alert.meter), "further use is refused")
    if alert.threshold_percent >= 100:
        outlook = f"The cap is reached: {consequence}."
    else:
        outlook = f"When the cap is reached, {consequence}."
    try:
        send_mail(
            subject=(
                f"License {license_.pk} for {license_.dataset.title}: "
                f"{alert.threshold_percent}% of its {label} cap used"
            ),
            message=(
                f"Your license {license_.pk} for {license_.dataset.title} has used "
                f"{_amount(alert.meter, alert.used)} of its cap of "
                f"{_amount(alert.meter, alert.cap)} ({label}). {outlook}\n"
                f"\n{settings.PUBLIC_BASE_URL}/api/v1/orgs/{license_.organization.slug}"
                f"/licenses/{license_.pk}/\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
        )
    except Exception:
        QuotaAlert.objects.filter(pk=alert.pk).update(sent_at=None)
        raise
    return len(recipients)
