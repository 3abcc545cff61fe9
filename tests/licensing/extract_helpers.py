"""Shared set-up for extract tests: a generated corpus, an offer on it, an active license."""

from decimal import Decimal
from typing import Any

from licensing.models import Canary, Extract, License, Offer
from licensing.services import extracts
from licensing.services.extract_files import read_part_records
from marketplace.consent.eligibility import RECORD_FIELDS
from marketplace.corpus.generator import CorpusSpec
from marketplace.services.synthetic_corpus import load_into_database
from tests.factories_corpus import DatasetFactory
from tests.factories_licensing import OfferFactory, active_license_for

CORPUS = CorpusSpec(posts=900, creators=90, seed=11)


def generated_offer() -> Offer:
    load_into_database(spec=CORPUS)
    dataset = DatasetFactory(fields_offered=list(RECORD_FIELDS), base_scope={})
    return OfferFactory(
        dataset=dataset,
        license_fee_minor=1_000,
        price_per_1000_records=Decimal("0"),
        allowed_purposes=["training", "evaluation"],
    )


def licensed(organization: Any, offer: Offer, **terms: Any) -> License:
    return active_license_for(organization, offer=offer, **terms)


def run_inline(extract: Extract) -> Extract:
    """Run plan, parts and finalize in this process, in order (what the chord does)."""
    for part_id in extracts.plan_extract(extract.pk):
        extracts.run_extract_part(part_id)
    extracts.finalize_extract(extract.pk)
    extract.refresh_from_db()
    return extract


def canary_pseudonyms(extract: Extract) -> set[str]:
    return set(Canary.objects.filter(extract=extract).values_list("post_pseudonym", flat=True))


def delivered_records(extract: Extract, *, canaries: bool = False) -> list[dict[str, Any]]:
    """The records in the extract's files, in file order; without its canaries unless asked."""
    planted = set() if canaries else canary_pseudonyms(extract)
    storage = extracts.extract_storage()
    records: list[dict[str, Any]] = []
    for entry in extract.manifest["files"]:
        with storage.open(f"{extract.storage_prefix}/{entry['name']}", "rb") as handle:
            records.extend(read_part_records(handle, extract.format))
    return [record for record in records if record.get("post_id") not in planted]


def file_bytes(extract: Extract) -> dict[str, bytes]:
    storage = extracts.extract_storage()
    names = [entry["name"] for entry in extract.manifest["files"]] + [extracts.MANIFEST_NAME]
    contents = {}
    for name in names:
        with storage.open(f"{extract.storage_prefix}/{name}", "rb") as handle:
            contents[name] = handle.read()
    return contents
