"""Downloading extract files: every download is checked against the license and metered."""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from licensing.models import License
from licensing.models.extracts import Extract, ExtractDownload, ExtractPart, ExtractState
from licensing.models.usage import UsageMeter
from licensing.services import quotas
from licensing.services.extracts import MANIFEST_NAME, ensure_deliverable
from licensing.services.file_delivery import extract_storage
from licensing.services.licenses import key_reaches_license
from licensing.services.metering import record_usage
from marketplace.errors import Conflict, NotFound
from marketplace.services.actor import Actor


@dataclass(frozen=True)
class AuthorizedDownload:
    storage_name: str
    file_name: str
    sha256: str
    download: ExtractDownload


def authorize_download(*, actor: Actor, extract: Extract, file_name: str) -> AuthorizedDownload:
    """Check that `file_name` of a ready extract may be downloaded now (license active, inside
    its term, the file's download quota and the license's download cap not used up) and record
    the download as usage: its bytes and records; the organization's admins are e-mailed after
    commit when the download crosses 80% or 100% of the cap (licensing/services/quotas.py). The
    caller then redirects to a short-lived URL for the file."""
    if actor.api_key is not None and not key_reaches_license(actor.api_key, extract.license_id):
        # A key bound to another license of the organization: this extract is not its to see.
        raise NotFound("No such extract.")
    with transaction.atomic():
        # The license's lock serializes concurrent downloads under the license, so its download
        # cap and each file's quota hold exactly. License before extract, as in start_extract.
        license_ = License.objects.select_for_update().get(pk=extract.license_id)
        extract = Extract.objects.select_for_update().get(pk=extract.pk)
        if extract.state != ExtractState.READY or not extract.manifest:
            raise Conflict(
                f"The extract is {extract.state}; files can be downloaded once it is ready.",
                code="extract_not_ready",
            )
        if extract.withdrawn_at is not None:
            raise Conflict(
                "The extract was withdrawn: it held posts that must now be deleted (see the "
                "license's deletion notices). Start a new extract.",
                code="extract_withdrawn",
            )
        ensure_deliverable(license_)
        files = {entry["name"]: entry for entry in extract.manifest["files"]}
        if file_name == MANIFEST_NAME:
            rows, size, sha256 = 0, None, ""
        elif file_name in files:
            entry = files[file_name]
            size, sha256 = entry["bytes"], entry["sha256"]
            # Metered records are the real ones: canaries are never billed.
            rows = (
                ExtractPart.objects.filter(extract=extract, file_name=file_name)
                .values_list("rows_done", flat=True)
                .first()
                or 0
            )
        else:
            raise NotFound(
                f"The extract has no file named {file_name!r}; its files are listed in its "
                "manifest.",
                code="file_not_found",
            )
        earlier = ExtractDownload.objects.filter(extract=extract, file_name=file_name).count()
        if earlier >= settings.EXTRACT_MAX_DOWNLOADS_PER_FILE:
            raise Conflict(
                f"{file_name} has been downloaded {earlier} times, the most the license allows.",
                code="download_quota_exceeded",
            )
        storage_name = f"{extract.storage_prefix}/{file_name}"
        if size is None:
            size = extract_storage().size(storage_name)
        used_before, download_cap = quotas.ensure_download_fits(
            license_, file_name=file_name, size=size
        )
        download = ExtractDownload.objects.create(
            extract=extract,
            organization_id=extract.organization_id,
            license=license_,
            file_name=file_name,
            bytes=size,
            records=rows,
            api_key_prefix=actor.api_key.prefix if actor.api_key else "",
            user=actor.user,
        )
        # Metered in the same transaction as the download, keyed by it: counted exactly once.
        record_usage(
            organization=license_.organization,
            license=license_,
            meter=UsageMeter.BYTES_DOWNLOADED,
            quantity=size,
            idempotency_key=f"download:{download.pk}:bytes",
            occurred_at=download.created_at,
        )
        record_usage(
            organization=license_.organization,
            license=license_,
            meter=UsageMeter.RECORDS_DELIVERED,
            quantity=rows,
            idempotency_key=f"download:{download.pk}:records",
            occurred_at=download.created_at,
        )
        quotas.notify_if_crossed(
            license_=license_,
            meter=UsageMeter.BYTES_DOWNLOADED,
            before=used_before,
            after=used_before + size,
            cap=download_cap,
        )
    return AuthorizedDownload(storage_name, file_name, sha256, download)
