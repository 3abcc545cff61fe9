"""Delta Sharing (docs/DELTA_SHARING.md): the open protocol's view of licenses and extracts.

The mapping, in one place:

- a share is a license the recipient's key reaches, named `license-<id>`;
- its one schema is the license's dataset (its slug);
- its one table, `posts`, is the license's series of extracts. A table version is an extract's
  ordinal among the license's extracts ordered by id (1, 2, ...), so versions only grow and need
  no stored counter. A version is readable while its extract is ready, in Parquet and not
  withdrawn (compliance deletes a withdrawn extract's files); the table's current version is the
  newest readable one.

The recipient's bearer token is a `download`-scoped API key of the license's organization, bound
to that one license when it comes from a profile (`LicenseKey`), verified behind the same
guessing throttle as an `Api-Key` header (`api_keys.authenticate_api_key`). Every
file a query hands out goes through `downloads.authorize_download`, so it is checked and metered
exactly like a download from the extract API, and its URL is the same short-lived signed URL.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from licensing.models import License, LicenseKey, LicenseState
from licensing.models.extracts import Extract, ExtractFormat, ExtractPart, ExtractState
from licensing.services import downloads
from licensing.services.extract_files import FIELD_TYPES
from licensing.services.file_delivery import delivery_url
from licensing.services.licenses import bound_license_id
from marketplace.errors import InvalidInput, NotAllowed, NotFound
from marketplace.models import ApiKey, ApiKeyScope
from marketplace.services.actor import Actor
from marketplace.services.api_keys import authenticate_api_key, create_api_key

SHARE_PREFIX = "license-"
TABLE_NAME = "posts"
SHARE_CREDENTIALS_VERSION = 1
DEFAULT_PROFILE_DAYS = 90
MAX_PAGE_SIZE = 1000
# A license has a share once it was issued: pending ones have no data to share yet.
_SHARED_STATES = (
    LicenseState.ACTIVE,
    LicenseState.SUSPENDED,
    LicenseState.EXPIRED,
    LicenseState.REVOKED,
)


class Unauthenticated(NotAllowed):
    """The bearer token is missing, unknown, revoked or expired (the protocol's 401)."""

    status_code = 401
    default_code = "unauthenticated"


# --- Authentication ----------------------------------------------------------------------------


def recipient_key(authorization: str, *, address: str) -> ApiKey:
    """The usable `download`-scoped key behind an `Authorization: Bearer <key>` header sent from
    `address`. Checked like an `Api-Key` header, behind the same guessing throttle: a wrong
    token counts a failure, and an address over the limit gets TooManyKeyAttempts (429)."""
    keyword, _, raw_key = authorization.partition(" ")
    if keyword.lower() != "bearer" or not raw_key.strip():
        raise Unauthenticated("A bearer token is required: use the profile file's bearerToken.")
    api_key = authenticate_api_key(raw_key=raw_key.strip(), address=address)
    if api_key is None:
        raise Unauthenticated("The bearer token is not valid: it is unknown, revoked or expired.")
    if not api_key.has_scope(ApiKeyScope.DOWNLOAD):
        raise NotAllowed("The bearer token's API key lacks the 'download' scope.")
    return api_key


# --- Shares, schemas, tables -------------------------------------------------------------------


def share_name(license_: License) -> str:
    return f"{SHARE_PREFIX}{license_.pk}"


def shared_licenses(api_key: ApiKey) -> QuerySet[License]:
    """The shares a bearer token reaches: the license its profile was issued for (`LicenseKey`),
    or, for a plain `download` key, every issued license of its organization."""
    licenses = License.objects.filter(
        organization=api_key.organization_id, state__in=_SHARED_STATES
    )
    bound_to = bound_license_id(api_key)
    if bound_to is not None:
        licenses = licenses.filter(pk=bound_to)
    return licenses.select_related("dataset").order_by("id")


def get_share(*, api_key: ApiKey, share: str) -> License:
    """The license behind a share name; another organization's license does not exist (404)."""
    license_id = share.removeprefix(SHARE_PREFIX)
    license_ = None
    if share.startswith(SHARE_PREFIX) and license_id.isdigit():
        license_ = shared_licenses(api_key).filter(pk=int(license_id)).first()
    if license_ is None:
        raise NotFound(f"Share {share!r} does not exist.")
    return license_


def get_schema(*, api_key: ApiKey, share: str, schema: str) -> License:
    license_ = get_share(api_key=api_key, share=share)
    if schema != license_.dataset.slug:
        raise NotFound(f"Schema {schema!r} does not exist in share {share!r}.")
    return license_


def get_table(*, api_key: ApiKey, share: str, schema: str, table: str) -> License:
    license_ = get_schema(api_key=api_key, share=share, schema=schema)
    if table != TABLE_NAME:
        raise NotFound(f"Table {table!r} does not exist in {share}.{schema}.")
    return license_


def share_json(license_: License) -> dict[str, str]:
    return {"name": share_name(license_), "id": str(license_.pk)}


def schema_json(license_: License) -> dict[str, str]:
    return {"name": license_.dataset.slug, "share": share_name(license_)}


def table_json(license_: License) -> dict[str, str]:
    return {
        "name": TABLE_NAME,
        "schema": license_.dataset.slug,
        "share": share_name(license_),
        "shareId": str(license_.pk),
        "id": f"{share_name(license_)}-{TABLE_NAME}",
    }


def page(items: list[Any], *, max_results: str | None, page_token: str | None) -> dict[str, Any]:
    """One page of a listing: `pageToken` is the offset of the page, as the server chose it."""
    try:
        size = int(max_results) if max_results else MAX_PAGE_SIZE
        start = int(page_token) if page_token else 0
    except ValueError:
        raise InvalidInput("maxResults and pageToken must be integers.") from None
    if not 0 < size <= MAX_PAGE_SIZE or start < 0:
        raise InvalidInput(f"maxResults must be 1 to {MAX_PAGE_SIZE}; pageToken from a response.")
    body: dict[str, Any] = {"items": items[start : start + size]}
    if start + size < len(items):
        body["nextPageToken"] = str(start + size)
    return body


# --- Versions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableVersion:
    version: int
    extract: Extract


def _readable(extract: Extract) -> bool:
    return (
        extract.state == ExtractState.READY
        and extract.format == ExtractFormat.PARQUET
        and extract.withdrawn_at is None
        and bool(extract.manifest)
    )


def table_versions(license_: License) -> list[TableVersion]:
    """The readable versions of the license's table, oldest first. The version number counts
    every extract of the license (ordered by id), readable or not, so it never changes."""
    extracts = Extract.objects.filter(license=license_).order_by("id")
    return [
        TableVersion(ordinal, extract)
        for ordinal, extract in enumerate(extracts, start=1)
        if _readable(extract)
    ]


def table_version(license_: License, *, version: int | None = None) -> TableVersion:
    """The requested version, or the current one; 404 when it is not (or no longer) readable."""
    versions = table_versions(license_)
    if version is None:
        if not versions:
            raise NotFound("The table has no version yet: no Parquet extract is ready.")
        return versions[-1]
    for candidate in versions:
        if candidate.version == version:
            return candidate
    raise NotFound(
        f"Version {version} of the table is not available: it does not exist, is not a ready "
        "Parquet extract, or was withdrawn for deletions."
    )


# --- Metadata and files ------------------------------------------------------------------------


def _delta_type(name: str) -> Any:
    arrow_type = FIELD_TYPES[name]
    # The Parquet files' Arrow types (extract_files.FIELD_TYPES) are strings, booleans and
    # lists of strings; these are their Delta names.
    if str(arrow_type) == "bool":
        return "boolean"
    if str(arrow_type) == "string":
        return "string"
    if str(arrow_type) == "list<item: string>":
        return {"type": "array", "elementType": "string", "containsNull": True}
    raise ValueError(f"No Delta type for field {name!r} ({arrow_type})")


def schema_string(fields: list[str]) -> str:
    """The Delta schema of Parquet files written with `extract_files.arrow_schema(fields)`."""
    return json.dumps(
        {
            "type": "struct",
            "fields": [
                {"name": name, "type": _delta_type(name), "nullable": True, "metadata": {}}
                for name in fields
            ],
        },
        separators=(",", ":"),
    )


def _file_rows(extract: Extract) -> dict[str, int]:
    # A file's rows are its records and the canaries planted in it.
    return {
        part.file_name: part.rows_done + part.canaries_written
        for part in ExtractPart.objects.filter(extract=extract).only(
            "file_name", "rows_done", "canaries_written"
        )
    }


def metadata_lines(license_: License, current: TableVersion) -> list[dict[str, Any]]:
    """The `protocol` and `metaData` lines of a metadata or query answer."""
    manifest = current.extract.manifest or {}
    files = manifest.get("files", [])
    return [
        {"protocol": {"minReaderVersion": 1}},
        {
            "metaData": {
                "id": f"{share_name(license_)}-{TABLE_NAME}",
                "name": TABLE_NAME,
                "description": license_.dataset.title,
                "format": {"provider": "parquet", "options": {}},
                "schemaString": schema_string(list(manifest["fields"])),
                "partitionColumns": [],
                "configuration": {},
                "version": current.version,
                "size": sum(entry["bytes"] for entry in files),
                "numFiles": len(files),
            }
        },
    ]


def query_lines(
    *, actor: Actor, license_: License, current: TableVersion, request: HttpRequest | None
) -> list[dict[str, Any]]:
    """The answer to a query: metadata, then one `file` line per file of the version's extract.
    Each file is authorized and metered as a download (all in one transaction), and handed out
    as a signed URL. Not idempotent: every query counts as one download of each file."""
    extract = current.extract
    rows = _file_rows(extract)
    ttl = settings.EXTRACT_URL_TTL_SECONDS
    lines = metadata_lines(license_, current)
    files = (extract.manifest or {}).get("files", [])  # a readable version has a manifest
    # All files or none: a refusal midway (a file's quota) must not leave earlier files metered.
    with transaction.atomic():
        authorized_files = [
            downloads.authorize_download(actor=actor, extract=extract, file_name=entry["name"])
            for entry in files
        ]
    for entry, authorized in zip(files, authorized_files, strict=True):
        expires = timezone.now() + timedelta(seconds=ttl)
        url = delivery_url(
            authorized.storage_name,
            download_name=authorized.file_name,
            request=request,
            etag=authorized.sha256 or None,
        )
        lines.append(
            {
                "file": {
                    "url": url,
                    "id": entry["sha256"],
                    "partitionValues": {},
                    "size": entry["bytes"],
                    "stats": json.dumps({"numRecords": rows.get(entry["name"], 0)}),
                    "version": current.version,
                    "expirationTimestamp": int(expires.timestamp() * 1000),
                }
            }
        )
    return lines


# --- Profile -----------------------------------------------------------------------------------


def profile_endpoint(request: HttpRequest) -> str:
    """The profile's `endpoint`: the prefix the connector puts before `/shares`."""
    return request.build_absolute_uri(reverse("delta-sharing-shares")).removesuffix("/shares")


def build_profile(*, actor: Actor, license_: License, endpoint: str) -> dict[str, Any]:
    """A profile file for the license's share: a new `download`-scoped key of the license's
    organization, bound to this license (`LicenseKey`: it reaches this share and this license's
    files only), expiring in DEFAULT_PROFILE_DAYS. The key is shown once here and never again;
    revoking it (the API-key routes) locks the profile out."""
    expires_at = timezone.now() + timedelta(days=DEFAULT_PROFILE_DAYS)
    with transaction.atomic():
        api_key, raw_key = create_api_key(
            actor=actor,
            organization=license_.organization,
            name=f"Delta Sharing: {share_name(license_)}",
            scopes=[ApiKeyScope.DOWNLOAD],
            expires_at=expires_at,
        )
        LicenseKey.objects.create(api_key=api_key, license=license_)
    return {
        "shareCredentialsVersion": SHARE_CREDENTIALS_VERSION,
        "endpoint": endpoint,
        "bearerToken": raw_key,
        "expirationTime": _iso(expires_at),
    }


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
