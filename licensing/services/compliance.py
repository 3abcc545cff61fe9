"""After delivery: deletion notices (docs/COMPLIANCE.md).

`process_ledger` reads the ledger entries added since its last run, finds the delivered posts
they affect (directly, or through their author), and for every license that received such a
post and may no longer hold it, adds the post to that license's notice for the current period,
with its pseudonym exactly as delivered and a reason category. The extracts that delivered it
are withdrawn (their files deleted). The cursor advances in the same transaction as the notices,
so a crash or a second run never loses or duplicates an item.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from licensing.models import (
    ComplianceCursor,
    ComplianceWebhook,
    DeletionNotice,
    Extract,
    License,
    NoticeItem,
    NoticeReason,
)
from licensing.services.delivery import Pseudonymizer
from licensing.services.delivery_record import extracts_holding
from licensing.services.file_delivery import extract_storage
from marketplace.consent.eligibility import eligible_posts
from marketplace.consent.scope import Scope
from marketplace.errors import Conflict, InvalidInput, NotAllowed
from marketplace.models import LedgerEntry, Post, SubjectKind
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

_FAMILY_REASONS: dict[str, str] = {
    "post_delete": NoticeReason.DELETED,
    "post_drop": NoticeReason.DELETED,
    "post_withheld": NoticeReason.WITHHELD,
    "post_edit": NoticeReason.EDITED,
    "post_scrub_geo": NoticeReason.GEO_SCRUBBED,
    "user_delete": NoticeReason.DELETED,
    "user_protect": NoticeReason.ACCOUNT_PRIVATE,
    "user_suspend": NoticeReason.ACCOUNT_SUSPENDED,
    "user_withheld": NoticeReason.WITHHELD,
}
# These reasons call for deletion only when the post is no longer eligible for the license
# (an unprotect in the same batch, or a withholding elsewhere, leaves it deliverable). An edit
# or a geo scrub makes the delivered copy outdated even though the post stays eligible.
_ELIGIBILITY_REASONS = frozenset(
    {
        NoticeReason.DELETED,
        NoticeReason.ACCOUNT_PRIVATE,
        NoticeReason.ACCOUNT_SUSPENDED,
        NoticeReason.CONSENT_WITHDRAWN,
        NoticeReason.WITHHELD,
    }
)
_LOOKUP_BATCH = 5_000


def reason_for(family: str) -> str | None:
    if family.startswith("consent_"):
        return NoticeReason.CONSENT_WITHDRAWN
    return _FAMILY_REASONS.get(family)


def period_start(instant: datetime) -> datetime:
    """Notices are batched per license and period of COMPLIANCE_NOTICE_PERIOD_MINUTES."""
    minutes = settings.COMPLIANCE_NOTICE_PERIOD_MINUTES
    epoch_minutes = int(instant.timestamp() // 60)
    return datetime.fromtimestamp((epoch_minutes - epoch_minutes % minutes) * 60, tz=instant.tzinfo)


def process_ledger(*, batch_size: int = 50_000, now: datetime | None = None) -> int:
    """Turn new ledger entries into notice items; returns how many items were added. Safe to
    run concurrently and repeatedly (the cursor row is locked; items are unique)."""
    added = 0
    while True:
        with transaction.atomic():
            cursor, _ = ComplianceCursor.objects.select_for_update().get_or_create(pk=1)
            entries = list(
                LedgerEntry.objects.filter(pk__gt=cursor.last_entry_id)
                .order_by("pk")
                .values_list("pk", "family", "subject_kind", "subject_platform_id")[:batch_size]
            )
            if not entries:
                return added
            added += _notice_affected_posts(entries, now=now or timezone.now())
            cursor.last_entry_id = entries[-1][0]
            cursor.save(update_fields=["last_entry_id", "updated_at"])
        if len(entries) < batch_size:
            return added


def _notice_affected_posts(entries: list[tuple[int, str, str, int]], *, now: datetime) -> int:
    post_reasons: dict[int, set[str]] = defaultdict(set)
    author_reasons: dict[int, set[str]] = defaultdict(set)
    for _pk, family, subject_kind, subject_id in entries:
        reason = reason_for(family)
        if reason is None:
            continue
        target = post_reasons if subject_kind == SubjectKind.POST else author_reasons
        target[subject_id].add(reason)
    authors = sorted(author_reasons)
    for start in range(0, len(authors), _LOOKUP_BATCH):
        chunk = authors[start : start + _LOOKUP_BATCH]
        for post_id, author_id in Post.objects.filter(author__platform_id__in=chunk).values_list(
            "platform_id", "author__platform_id"
        ):
            post_reasons[post_id] |= author_reasons[author_id]
    if not post_reasons:
        return 0
    holders = extracts_holding(post_reasons)
    extract_ids = {extract_id for ids in holders.values() for extract_id in ids}
    license_of = dict(Extract.objects.filter(pk__in=extract_ids).values_list("pk", "license_id"))
    posts_by_license: dict[int, set[int]] = defaultdict(set)
    extracts_by_license_post: dict[tuple[int, int], set[int]] = defaultdict(set)
    for post_id, ids in holders.items():
        for extract_id in ids:
            posts_by_license[license_of[extract_id]].add(post_id)
            extracts_by_license_post[(license_of[extract_id], post_id)].add(extract_id)
    added = 0
    licenses = License.objects.select_related("dataset", "organization").filter(
        pk__in=posts_by_license
    )
    eligibility = _EligibilityMemo(now=now)
    for license_ in licenses:
        posts = sorted(posts_by_license[license_.pk])
        still_eligible = eligibility.still_eligible(license_, posts)
        items: list[tuple[int, str]] = []
        for post_id in posts:
            for reason in sorted(post_reasons[post_id]):
                if reason in _ELIGIBILITY_REASONS and post_id in still_eligible:
                    continue
                if reason == NoticeReason.GEO_SCRUBBED and "geo" not in license_.fields:
                    continue
                items.append((post_id, reason))
        if items:
            added += _add_to_notice(license_, items, now=now)
            withdrawn = {
                extract_id
                for post_id, _reason in items
                for extract_id in extracts_by_license_post[(license_.pk, post_id)]
            }
            withdraw_extracts(sorted(withdrawn), now=now)
    return added


class _EligibilityMemo:
    """Which posts are still eligible, asked once per set of license terms: licenses with the
    same dataset, scope, purposes and licensee country share the answer (common when many
    licensees take the same offer)."""

    def __init__(self, *, now: datetime) -> None:
        self._now = now
        self._checked: dict[tuple[object, ...], set[int]] = defaultdict(set)
        self._eligible: dict[tuple[object, ...], set[int]] = defaultdict(set)

    def still_eligible(self, license_: License, post_ids: list[int]) -> set[int]:
        country = license_.organization.country or None
        terms = (
            license_.dataset_id,
            orjson.dumps(license_.scope or {}, option=orjson.OPT_SORT_KEYS),
            tuple(sorted(license_.purposes)),
            country,
        )
        unknown = [post_id for post_id in post_ids if post_id not in self._checked[terms]]
        if unknown:
            selection = eligible_posts(
                dataset=license_.dataset,
                scope=Scope.from_dict(license_.scope or {}),
                purposes=license_.purposes,
                as_of=self._now,
                licensee_country=country,
            )
            for start in range(0, len(unknown), _LOOKUP_BATCH):
                chunk = unknown[start : start + _LOOKUP_BATCH]
                self._eligible[terms].update(
                    selection.filter(platform_id__in=chunk).values_list("platform_id", flat=True)
                )
            self._checked[terms].update(unknown)
        return self._eligible[terms]


def _add_to_notice(license_: License, items: list[tuple[int, str]], *, now: datetime) -> int:
    notice, _ = DeletionNotice.objects.get_or_create(
        license=license_,
        period_start=period_start(now),
        defaults={
            "organization_id": license_.organization_id,
            "deadline": now + timedelta(hours=settings.COMPLIANCE_NOTICE_DEADLINE_HOURS),
        },
    )
    pseudonymize = Pseudonymizer.for_license(license_.pseudonym_key)
    added = _insert_items(
        (notice.pk, license_.pk, post_id, pseudonymize("post", post_id), reason)
        for post_id, reason in items
    )
    if added == 0 and not notice.items.exists():
        notice.delete()  # every item was noticed before: no empty notice
    elif (
        added and ComplianceWebhook.objects.filter(organization_id=notice.organization_id).exists()
    ):
        from licensing import tasks  # tasks import the services

        transaction.on_commit(lambda: tasks.deliver_compliance_webhook.delay(notice.pk))
    return added


_ITEM_COLUMNS = ("notice_id", "license_id", "post_platform_id", "pseudonym", "reason")


def _insert_items(rows: Iterable[tuple[int, int, int, str, str]]) -> int:
    """Insert notice items, skipping any already noticed (once is enough); returns how many
    are new. On PostgreSQL: COPY into a session staging table, then one INSERT ... ON CONFLICT
    DO NOTHING (a deletion burst writes millions of items; model instances cost 10x more)."""
    if connection.vendor != "postgresql":
        before = NoticeItem.objects.count()
        NoticeItem.objects.bulk_create(
            [NoticeItem(**dict(zip(_ITEM_COLUMNS, row, strict=True))) for row in rows],
            ignore_conflicts=True,
            batch_size=2_000,
        )
        return NoticeItem.objects.count() - before
    columns = ", ".join(_ITEM_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS notice_item_staging (notice_id bigint, "
            "license_id bigint, post_platform_id bigint, pseudonym varchar(64), "
            "reason varchar(24))"
        )
        cursor.execute("TRUNCATE notice_item_staging")
        with cursor.copy(f"COPY notice_item_staging ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {NoticeItem._meta.db_table} ({columns}) "
            f"SELECT {columns} FROM notice_item_staging ON CONFLICT DO NOTHING"
        )
        return max(0, cursor.rowcount)


def withdraw_extracts(extract_ids: Iterable[int], *, now: datetime) -> None:
    """Mark extracts withdrawn and delete their files (after commit: storage is not
    transactional), so no stored file keeps serving a post that must be deleted."""
    to_withdraw = list(Extract.objects.filter(pk__in=list(extract_ids), withdrawn_at__isnull=True))
    if not to_withdraw:
        return
    Extract.objects.filter(pk__in=[e.pk for e in to_withdraw]).update(withdrawn_at=now)
    names = [
        f"{extract.storage_prefix}/{entry['name']}"
        for extract in to_withdraw
        for entry in (extract.manifest or {}).get("files", [])
    ]

    def delete_files() -> None:
        storage = extract_storage()
        for name in names:
            if storage.exists(name):
                storage.delete(name)

    # The manifest stays: it is the record of what was delivered.
    transaction.on_commit(delete_files)


# --- Licensee side -----------------------------------------------------------------------------


def overdue_notices(license_: License, *, now: datetime | None = None) -> "list[DeletionNotice]":
    return list(
        DeletionNotice.objects.filter(
            license=license_, acknowledged_at__isnull=True, deadline__lt=now or timezone.now()
        )
    )


def ensure_no_overdue_notice(license_: License, *, now: datetime | None = None) -> None:
    overdue = overdue_notices(license_, now=now)
    if overdue:
        raise NotAllowed(
            f"Deletion notice {overdue[0].pk} is past its deadline; acknowledge it to extract "
            "or download again.",
            code="compliance_overdue",
        )


def notice_state(notice: DeletionNotice, *, now: datetime | None = None) -> str:
    if notice.acknowledged_at is not None:
        return "acknowledged"
    return "overdue" if notice.deadline < (now or timezone.now()) else "pending"


def acknowledge_notice(
    *, actor: Actor, notice: DeletionNotice, statement: str, deletion_log_sha256: str = ""
) -> DeletionNotice:
    """Record the licensee's attestation that it deleted the notice's posts."""
    statement = statement.strip()
    errors: dict[str, list[str]] = {}
    if not statement:
        errors["statement"] = ["Say what was deleted, and from where."]
    digest = deletion_log_sha256.strip().lower()
    if digest and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
        errors["deletion_log_sha256"] = ["A SHA-256 is 64 hexadecimal characters."]
    if errors:
        raise InvalidInput(
            "The attestation is incomplete.", code="invalid_attestation", fields=errors
        )
    with transaction.atomic():
        updated = DeletionNotice.objects.filter(pk=notice.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(),
            acknowledged_by=actor.user,
            acknowledged_by_key=actor.api_key.prefix if actor.api_key else "",
            statement=statement,
            deletion_log_sha256=digest,
        )
        notice.refresh_from_db()
        if not updated:
            raise Conflict("The notice was acknowledged already.", code="already_acknowledged")
        record_audit_event(
            actor=actor,
            action="compliance.notice_acknowledged",
            organization=notice.organization,
            target=notice,
            data={"items": notice.items.count(), "deletion_log_sha256": digest},
        )
    return notice
