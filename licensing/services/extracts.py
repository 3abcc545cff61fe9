"""Extracts: the eligible posts of a license's scope at a fixed instant, written as files.

The flow (docs/ARCHITECTURE.md, "Extracts"):

1. `start_extract` (API) fixes `as_of` and the record limit, and queues the plan.
2. `plan_extract` (worker) walks the eligible post ids once, in id order, and cuts them into
   parts of at most EXTRACT_PART_ROWS rows, stopping at the license's remaining allowance; the
   parts run as a Celery chord (licensing/tasks.py), in parallel on as many workers as there are.
3. `run_extract_part` claims a part with a lease, streams its rows through the one eligibility
   module (`eligible_records`), shapes them like every delivery (`shape_record`), writes the file
   and records rows, bytes, SHA-256 and the delivered ids. A heartbeat proves it is alive.
4. `finalize_extract` (the chord's callback, or the last part when the reaper re-ran one) writes
   the signed manifest and marks the extract ready.
5. `reap_stalled_parts` (beat) hands a part whose worker died (no heartbeat) to a new task: the
   embedded broker never redelivers, and Redis only after its visibility timeout.

Every step is idempotent: a repeated task finds its work done (or leased to a live worker) and
returns; a part's file has a deterministic name and deterministic bytes, so a re-run overwrites
it with the same content, and rows are counted from the part's final record, never added twice.
"""

import hashlib
import hmac
import importlib.metadata
import math
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from licensing.models import License, LicenseState, UsageMeter
from licensing.models.extracts import (
    OPEN_EXTRACT_STATES,
    Extract,
    ExtractFormat,
    ExtractPart,
    ExtractState,
    PartState,
)
from licensing.services import canaries, compliance, extract_columnar, quotas
from licensing.services.delivery import Pseudonymizer, shape_record
from licensing.services.delivery_record import encode_ids
from licensing.services.extract_files import (
    PartOutput,
    PartWriter,
    file_digest,
    file_extension,
    open_part_writer,
)
from licensing.services.file_delivery import extract_storage
from licensing.services.metering import record_usage
from marketplace.consent.eligibility import RULES_VERSION, eligible_posts, eligible_records
from marketplace.consent.scope import Scope
from marketplace.errors import Conflict, InvalidInput
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT_VERSION = 1


class PartAborted(Exception):
    """The part stopped on purpose: its extract was cancelled or its lease was taken over."""


def code_version() -> str:
    try:
        return importlib.metadata.version("commonplace")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "unknown"


# --- Starting, cancelling, progress ------------------------------------------------------------


def ensure_deliverable(license_: License, *, now: datetime | None = None) -> None:
    """Raise unless the license is active, inside its term, and has no overdue deletion
    notice."""
    now = now or timezone.now()
    if license_.state != LicenseState.ACTIVE:
        raise Conflict(
            f"The license is {license_.state}; only an active license can deliver data.",
            code="license_not_active",
        )
    if license_.ends_at is not None and license_.ends_at <= now:
        raise Conflict("The license's term has ended.", code="license_expired")
    compliance.ensure_no_overdue_notice(license_, now=now)


def start_extract(*, actor: Actor, license_: License, format_: str) -> Extract:
    """Queue an extract of the license's scope as of now. One open extract per license."""
    if format_ not in ExtractFormat.values:
        raise InvalidInput(
            f"Unknown format {format_!r}.",
            code="invalid_format",
            fields={"format": [f"Use one of {', '.join(ExtractFormat.values)}."]},
        )
    from licensing import tasks  # the tasks module imports this one

    with transaction.atomic():
        license_ = License.objects.select_for_update().get(pk=license_.pk)
        ensure_deliverable(license_)
        delivered, cap = quotas.record_cap_usage(license_)
        remaining = max(0, cap - delivered)
        if remaining <= 0:
            raise Conflict(
                f"The license's record cap of {cap:,} records is used up ({delivered:,} "
                "delivered); no records remain to extract.",
                code="record_cap_reached",
            )
        if license_.extracts.filter(state__in=OPEN_EXTRACT_STATES).exists():
            raise Conflict(
                "An extract of this license is already running; wait for it or cancel it.",
                code="extract_running",
            )
        try:
            with transaction.atomic():
                extract = Extract.objects.create(
                    organization=license_.organization,
                    license=license_,
                    format=format_,
                    as_of=timezone.now(),
                    record_limit=remaining,
                    requested_by=actor.user,
                )
        except IntegrityError as error:  # a concurrent start won the race
            raise Conflict(
                "An extract of this license is already running.", code="extract_running"
            ) from error
        record_audit_event(
            actor=actor,
            action="extract.started",
            organization=license_.organization,
            target=extract,
            data={"license": license_.pk, "format": format_, "record_limit": remaining},
        )
        transaction.on_commit(lambda: tasks.plan_extract.delay(extract.pk))
    return extract


def cancel_extract(*, actor: Actor, extract: Extract) -> Extract:
    """Stop an open extract; running parts notice at their next batch and stop."""
    with transaction.atomic():
        updated = Extract.objects.filter(pk=extract.pk, state__in=OPEN_EXTRACT_STATES).update(
            state=ExtractState.CANCELLED, finished_at=timezone.now(), updated_at=timezone.now()
        )
        extract.refresh_from_db()
        if not updated:
            raise Conflict(
                f"An extract that is {extract.state} cannot be cancelled.",
                code="invalid_transition",
            )
        record_audit_event(
            actor=actor,
            action="extract.cancelled",
            organization=extract.organization,
            target=extract,
        )
    return extract


@dataclass(frozen=True)
class Progress:
    rows_done: int
    rows_estimated: int | None
    parts_done: int
    parts_total: int
    eta_seconds: int | None


def extract_progress(extract: Extract, *, now: datetime | None = None) -> Progress:
    """Rows and parts done so far, and an ETA from the rate since the extract started."""
    now = now or timezone.now()
    parts = list(extract.parts.values_list("state", "rows_done"))
    rows_done = sum(rows for _, rows in parts)
    parts_done = sum(1 for state, _ in parts if state == PartState.DONE)
    if extract.state == ExtractState.READY:
        rows_done = extract.rows_delivered
    eta: int | None = None
    if extract.state == ExtractState.RUNNING and extract.started_at and extract.rows_estimated:
        elapsed = (now - extract.started_at).total_seconds()
        if rows_done > 0 and elapsed > 0:
            remaining = max(0, extract.rows_estimated - rows_done)
            eta = math.ceil(remaining * elapsed / rows_done)
    return Progress(rows_done, extract.rows_estimated, parts_done, len(parts), eta)


# --- Planning ----------------------------------------------------------------------------------


def _selection(extract: Extract) -> dict[str, Any]:
    license_ = extract.license
    return {
        "dataset": license_.dataset,
        "scope": Scope.from_dict(license_.scope or {}),
        "purposes": list(license_.purposes),
        "as_of": extract.as_of,
        "licensee_country": license_.organization.country or None,
    }


def plan_extract(extract_id: int) -> list[int]:
    """Cut a queued extract into parts and mark it running; returns the part ids to run (none
    when the extract was planned already or is no longer queued). An extract with nothing
    eligible is finalized at once."""
    part_rows = settings.EXTRACT_PART_ROWS
    extract_columnar.tune_session_for_streaming()
    with transaction.atomic():
        extract = (
            Extract.objects.select_for_update()
            .select_related("license__dataset", "license__organization")
            .filter(pk=extract_id)
            .first()
        )
        if extract is None or extract.state != ExtractState.QUEUED:
            return []
        ids = (
            eligible_posts(**_selection(extract))
            .order_by("platform_id")
            .values_list("platform_id", flat=True)
        )
        bounds: list[tuple[int, int, int]] = []  # (first id, last id, rows)
        first = last = None
        rows = total = 0
        for post_id in ids.iterator(chunk_size=20_000):
            if total >= extract.record_limit:
                break
            if first is None:
                first = post_id
            last = post_id
            rows += 1
            total += 1
            if rows == part_rows:
                bounds.append((first, last, rows))
                first, rows = None, 0
        if first is not None and last is not None:
            bounds.append((first, last, rows))
        parts = ExtractPart.objects.bulk_create(
            ExtractPart(
                extract=extract,
                index=index,
                first_post_id=first_id,
                last_post_id=last_id,
                rows_expected=count,
            )
            for index, (first_id, last_id, count) in enumerate(bounds)
        )
        canaries.plant_canaries(extract, parts, _fields(extract.license))
        extract.state = ExtractState.RUNNING
        extract.started_at = timezone.now()
        extract.rows_estimated = total
        extract.parts_total = len(parts)
        extract.save(
            update_fields=["state", "started_at", "rows_estimated", "parts_total", "updated_at"]
        )
    part_ids = [part.pk for part in ExtractPart.objects.filter(extract=extract).order_by("index")]
    if not part_ids:
        finalize_extract(extract.pk)
    return part_ids


# --- Running a part ----------------------------------------------------------------------------


def _claim(part_id: int) -> str | None:
    """Take the part: pending, or running with a stale heartbeat (its worker died). Returns the
    lease, or None when the part is done, failed, held by a live worker, or its extract is no
    longer running."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.EXTRACT_HEARTBEAT_STALE_SECONDS)
    lease = uuid.uuid4().hex
    claimable = Q(state=PartState.PENDING) | Q(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True), state=PartState.RUNNING
    )
    running_extracts = Extract.objects.filter(state=ExtractState.RUNNING).values("pk")
    claimed = ExtractPart.objects.filter(
        claimable, pk=part_id, extract_id__in=running_extracts
    ).update(
        state=PartState.RUNNING,
        lease=lease,
        heartbeat_at=now,
        started_at=now,
        rows_done=0,
        attempts=F("attempts") + 1,
        last_error="",
    )
    return lease if claimed else None


def _heartbeat(part: ExtractPart, lease: str, rows_done: int) -> None:
    """Prove the part is alive and record its progress; stop if it was cancelled or taken."""
    alive = ExtractPart.objects.filter(pk=part.pk, lease=lease, state=PartState.RUNNING).update(
        heartbeat_at=timezone.now(), rows_done=rows_done
    )
    if not alive:
        raise PartAborted(f"part {part.pk} was taken over by another worker")
    if not Extract.objects.filter(pk=part.extract_id, state=ExtractState.RUNNING).exists():
        raise PartAborted(f"extract {part.extract_id} is no longer running")


def _fields(license_: License) -> list[str]:
    return list(license_.fields) or list(license_.dataset.fields_offered)


def part_file_name(extract: Extract, index: int) -> str:
    return f"part-{index:05d}.{file_extension(extract.format)}"


def run_extract_part(part_id: int, *, on_batch: Callable[[int], None] | None = None) -> bool:
    """Write one part. Returns True when this call wrote it, False when there was nothing to
    do (done already, held by a live worker, or the extract stopped). `on_batch(rows)` runs
    after each batch (tests use it to stop a worker mid-part)."""
    lease = _claim(part_id)
    if lease is None:
        return False
    part = ExtractPart.objects.select_related(
        "extract__license__dataset", "extract__license__organization"
    ).get(pk=part_id)
    extract = part.extract
    fields = _fields(extract.license)
    file_name = part_file_name(extract, part.index)
    storage_name = f"{extract.storage_prefix}/{file_name}"
    extract_columnar.tune_session_for_streaming()

    def on_progress(rows: int) -> None:
        _heartbeat(part, lease, rows)
        if on_batch is not None:
            on_batch(rows)

    try:
        with tempfile.TemporaryDirectory(prefix="commonplace-part-") as work_dir:
            path = Path(work_dir) / file_name
            writer = open_part_writer(extract.format, path, fields)
            # Both paths write the same bytes; the columnar one is faster where it applies.
            write = (
                extract_columnar.write_part
                if extract_columnar.applies(extract.format)
                else _write_part_rows
            )
            output = write(
                extract=extract,
                part=part,
                selection=_selection(extract),
                fields=fields,
                pseudonymize=Pseudonymizer.for_license(extract.license.pseudonym_key),
                planted=canaries.canaries_for_part(part),
                writer=writer,
                chunk_rows=settings.EXTRACT_CHUNK_ROWS,
                on_progress=on_progress,
            )
            writer.close()
            size, sha256 = file_digest(path)
            _heartbeat(part, lease, len(output.delivered))
            _save_file(storage_name, path)
        return _complete_part(
            part,
            lease=lease,
            file_name=file_name,
            storage_name=storage_name,
            rows=len(output.delivered),
            canaries_written=output.canaries_written,
            size=size,
            sha256=sha256,
            pseudonyms_sha256=output.pseudonyms_sha256,
            delivered_ids=encode_ids(output.delivered),
        )
    except PartAborted:
        return False
    except Exception as error:
        release_part(part_id, lease=lease, error=f"{type(error).__name__}: {error}")
        raise


def _write_part_rows(
    *,
    extract: Extract,
    part: ExtractPart,
    selection: dict[str, Any],
    fields: list[str],
    pseudonymize: Pseudonymizer,
    planted: list[tuple[int, int]],
    writer: PartWriter,
    chunk_rows: int,
    on_progress: Callable[[int], None],
) -> PartOutput:
    """The generic path: the part's records from `eligible_records`, shaped one by one and
    written in chunks of `chunk_rows`; `on_progress(rows)` after each chunk."""
    delivered: list[int] = []
    pseudonym_digest = hashlib.sha256()
    written_canaries = 0
    batch: list[dict[str, Any]] = []

    def plant_due(position: int | None) -> None:
        # Canaries go in before the real row at their position (all remaining ones at the
        # end), so a file mixes them in where the license secret says.
        nonlocal written_canaries
        while planted and (position is None or planted[0][0] <= position):
            _, index = planted.pop(0)
            pseudonym = canaries.canary_post_pseudonym(extract, index)
            pseudonym_digest.update(pseudonym.encode() + b"\n")
            batch.append(canaries.canary_record(extract, index, fields))
            written_canaries += 1

    records = eligible_records(
        **selection,
        chunk_size=chunk_rows,
        after_post_id=part.first_post_id - 1,
        up_to_post_id=part.last_post_id,
    )
    for record in records:
        # A part never delivers more than it was planned to: the license's cap holds even if
        # posts were backfilled after planning.
        if len(delivered) >= part.rows_expected:
            break
        plant_due(len(delivered))
        delivered.append(record["post_id"])
        pseudonym_digest.update(pseudonymize("post", record["post_id"]).encode() + b"\n")
        batch.append(shape_record(record, fields=fields, pseudonymize=pseudonymize))
        if len(batch) >= chunk_rows:
            writer.write(batch)
            batch.clear()
            on_progress(len(delivered))
    plant_due(None)
    writer.write(batch)
    return PartOutput(delivered, written_canaries, pseudonym_digest.hexdigest())


def _save_file(storage_name: str, path: Path) -> None:
    """Store under exactly `storage_name`, replacing an earlier attempt's file."""
    storage = extract_storage()
    if storage.exists(storage_name):
        storage.delete(storage_name)
    with path.open("rb") as handle:
        saved = storage.save(storage_name, File(handle, name=path.name))
    if saved != storage_name:  # another writer slipped in between: keep the names exact
        storage.delete(saved)
        raise Conflict(f"{storage_name} was written concurrently", code="storage_conflict")


def _complete_part(part: ExtractPart, *, lease: str, **result: Any) -> bool:
    with transaction.atomic():
        updated = ExtractPart.objects.filter(
            pk=part.pk, lease=lease, state=PartState.RUNNING
        ).update(
            state=PartState.DONE,
            rows_done=result["rows"],
            canaries_written=result["canaries_written"],
            file_name=result["file_name"],
            storage_name=result["storage_name"],
            bytes=result["size"],
            sha256=result["sha256"],
            pseudonyms_sha256=result["pseudonyms_sha256"],
            delivered_ids=result["delivered_ids"],
            heartbeat_at=timezone.now(),
            finished_at=timezone.now(),
        )
    return bool(updated)


def release_part(part_id: int, *, lease: str, error: str) -> None:
    """Give a part back after an error, so a retry (or the reaper) can claim it at once."""
    ExtractPart.objects.filter(pk=part_id, lease=lease, state=PartState.RUNNING).update(
        state=PartState.PENDING, lease="", heartbeat_at=None, last_error=error[:2000]
    )


def fail_part(part_id: int, *, error: str) -> None:
    """A part that cannot be written (retries exhausted): the extract fails with the reason."""
    with transaction.atomic():
        part = ExtractPart.objects.select_related("extract").filter(pk=part_id).first()
        if part is None or part.state == PartState.DONE:
            return
        ExtractPart.objects.filter(pk=part_id).update(
            state=PartState.FAILED, lease="", last_error=error[:2000]
        )
        fail_extract(part.extract_id, reason=f"Part {part.index} failed: {error}"[:2000])


def fail_extract(extract_id: int, *, reason: str) -> None:
    Extract.objects.filter(pk=extract_id, state__in=OPEN_EXTRACT_STATES).update(
        state=ExtractState.FAILED,
        failure_reason=reason,
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )


def all_parts_done(extract_id: int) -> bool:
    return (
        not ExtractPart.objects.filter(extract_id=extract_id).exclude(state=PartState.DONE).exists()
    )


# --- Finalizing --------------------------------------------------------------------------------


def manifest_key() -> bytes:
    return settings.EXTRACT_MANIFEST_KEY.encode()


def manifest_key_id() -> str:
    return hashlib.sha256(manifest_key()).hexdigest()[:16]


def canonical_json(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


def sign_manifest(manifest: dict[str, Any]) -> str:
    return hmac.new(manifest_key(), canonical_json(manifest), hashlib.sha256).hexdigest()


def verify_manifest(document: dict[str, Any]) -> bool:
    """Whether a downloaded manifest.json is one this server signed, unaltered."""
    signature = document.get("signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("value"), str):
        return False
    manifest = {key: value for key, value in document.items() if key != "signature"}
    return hmac.compare_digest(sign_manifest(manifest), signature["value"])


def build_manifest(extract: Extract, parts: list[ExtractPart]) -> dict[str, Any]:
    """Everything needed to prove and re-derive the delivery. No clock and no extract id, so the
    same license and `as_of` give the same bytes.

    `delivered_pseudonyms_sha256` is SHA-256 over the parts' pseudonym hashes (hex, in part
    order, each followed by a newline); a part's is SHA-256 over its posts' pseudonyms in post
    id order, each followed by a newline."""
    license_ = extract.license
    chain = hashlib.sha256()
    for part in parts:
        chain.update(part.pseudonyms_sha256.encode() + b"\n")
    return {
        "manifest_version": MANIFEST_FORMAT_VERSION,
        "license": license_.pk,
        "organization": license_.organization.slug,
        "dataset": license_.dataset.slug,
        "offer_version": license_.offer.version,
        "scope": license_.scope,
        "purposes": list(license_.purposes),
        "fields": list(license_.fields) or list(license_.dataset.fields_offered),
        "licensee_country": license_.organization.country or None,
        "as_of": extract.as_of.isoformat(),
        "format": extract.format,
        "record_limit": extract.record_limit,
        "eligibility_rules_version": RULES_VERSION,
        "code_version": code_version(),
        # Rows as in the files, canaries included (see licensing/services/canaries.py).
        "files": [
            {
                "name": part.file_name,
                "rows": part.rows_done + part.canaries_written,
                "bytes": part.bytes,
                "sha256": part.sha256,
            }
            for part in parts
        ],
        "total_rows": sum(part.rows_done + part.canaries_written for part in parts),
        "delivered_pseudonyms_sha256": chain.hexdigest(),
    }


def finalize_extract(extract_id: int) -> Extract | None:
    """Write the signed manifest and mark the extract ready, once every part is done. Safe to
    call any number of times, from the chord and from a re-run part alike."""
    with transaction.atomic():
        extract = (
            Extract.objects.select_for_update()
            .select_related("license__dataset", "license__organization", "license__offer")
            .filter(pk=extract_id)
            .first()
        )
        if extract is None or extract.state != ExtractState.RUNNING:
            return extract
        parts = list(extract.parts.order_by("index"))
        if any(part.state != PartState.DONE for part in parts):
            return extract
        manifest = build_manifest(extract, parts)
        signature = sign_manifest(manifest)
        document = {
            **manifest,
            "signature": {
                "algorithm": "HMAC-SHA256",
                "key_id": manifest_key_id(),
                "value": signature,
            },
        }
        with tempfile.TemporaryDirectory(prefix="commonplace-manifest-") as work_dir:
            path = Path(work_dir) / MANIFEST_NAME
            path.write_bytes(canonical_json(document))
            _save_file(f"{extract.storage_prefix}/{MANIFEST_NAME}", path)
        # Read before this extract is ready, so it counts only the others.
        delivered_before, record_cap = quotas.record_cap_usage(extract.license)
        extract.manifest = document
        extract.rows_delivered = sum(part.rows_done for part in parts)  # billable: no canaries
        extract.bytes_delivered = sum(part.bytes for part in parts)
        extract.state = ExtractState.READY
        extract.finished_at = timezone.now()
        extract.save()
        record_audit_event(
            actor=Actor.system(),
            action="extract.ready",
            organization=extract.organization,
            target=extract,
            data={"rows": extract.rows_delivered, "files": len(parts)},
        )
        record_usage(
            organization=extract.organization,
            license=extract.license,
            meter=UsageMeter.EXTRACT_RUNS,
            quantity=1,
            idempotency_key=f"extract:{extract.pk}",
            occurred_at=extract.finished_at,
        )
        quotas.notify_if_crossed(
            license_=extract.license,
            meter=UsageMeter.RECORDS_DELIVERED,
            before=delivered_before,
            after=delivered_before + extract.rows_delivered,
            cap=record_cap,
        )
    return extract


# --- Recovery ----------------------------------------------------------------------------------


def stalled_part_ids(*, now: datetime | None = None) -> list[int]:
    """Parts of running extracts whose worker stopped sending heartbeats."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.EXTRACT_HEARTBEAT_STALE_SECONDS)
    return list(
        ExtractPart.objects.filter(
            extract__state=ExtractState.RUNNING,
            state=PartState.RUNNING,
            heartbeat_at__lt=stale_before,
        ).values_list("pk", flat=True)
    )


def reap_stalled_parts(*, now: datetime | None = None) -> list[int]:
    """Re-queue the parts whose worker died, failing the extract once a part has used up its
    attempts, and re-queue plans lost before they ran. Returns the re-queued part ids."""
    from licensing import tasks

    now = now or timezone.now()
    requeued: list[int] = []
    for part_id in stalled_part_ids(now=now):
        part = ExtractPart.objects.get(pk=part_id)
        if part.attempts >= settings.EXTRACT_PART_MAX_ATTEMPTS:
            fail_part(part_id, error=f"no heartbeat after {part.attempts} attempts")
            continue
        requeued.append(part_id)
        tasks.run_extract_part.apply_async(args=[part_id], kwargs={"finalize_when_done": True})
    lost_before = now - timedelta(seconds=settings.EXTRACT_HEARTBEAT_STALE_SECONDS)
    for extract_id in Extract.objects.filter(
        state=ExtractState.QUEUED, created_at__lt=lost_before
    ).values_list("pk", flat=True):
        tasks.plan_extract.delay(extract_id)
    # An extract whose parts are all done but whose callback never ran (a re-run part).
    for extract_id in Extract.objects.filter(state=ExtractState.RUNNING).values_list(
        "pk", flat=True
    ):
        if all_parts_done(extract_id):
            finalize_extract(extract_id)
    return requeued
