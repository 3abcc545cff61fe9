"""Leak attribution: given records (or just ids, or just texts) found outside, say which
license(s) and extract(s) they came from, with the evidence and a confidence.

Evidence, strongest first:

* canaries: a canary's post or author pseudonym, or its exact text, exists in exactly one
  extract (licensing/services/canaries.py): certain;
* pseudonyms: post and author pseudonyms are HMACs under a per-license key, so a leaked
  pseudonym that equals one a license received cannot be a coincidence (128 bits): high;
* texts: a leaked text equal to a delivered post's text only says the post was delivered to
  every license that holds it: low, and spread over those licenses.

A file that mixes several licensees' records gets one attribution per license, each with its own
evidence. The pseudonym check recomputes each license's pseudonyms for the posts it received
(delivery record), so it costs one HMAC per delivered row: an operator tool, not a hot path.
"""

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import zstandard

from licensing.models import Canary, Extract, ExtractState, License
from licensing.services.delivery import Pseudonymizer
from licensing.services.delivery_record import decode_ids
from marketplace.models import Post

_ID_FIELDS = ("post_id", "author_id", "referenced_post_id", "referenced_author_id")
_HEX = frozenset("0123456789abcdef")


@dataclass
class Attribution:
    license_id: int
    organization: str
    extract_ids: set[int] = field(default_factory=set)
    canaries: int = 0
    pseudonyms: int = 0
    texts: int = 0

    @property
    def confidence(self) -> str:
        if self.canaries:
            return "certain"
        if self.pseudonyms:
            return "high"
        return "low"

    def as_dict(self) -> dict[str, Any]:
        return {
            "license": self.license_id,
            "organization": self.organization,
            "extracts": sorted(self.extract_ids),
            "confidence": self.confidence,
            "evidence": {
                "canaries_found": self.canaries,
                "pseudonyms_matched": self.pseudonyms,
                "texts_matched": self.texts,
            },
        }


@dataclass(frozen=True)
class LeakedMaterial:
    ids: frozenset[str]
    texts: frozenset[str]


def material_from_records(records: Iterable[dict[str, Any]]) -> LeakedMaterial:
    """Pseudonyms from the id fields of every record; texts from records without ids."""
    ids: set[str] = set()
    texts: set[str] = set()
    for record in records:
        record_ids = {
            value.lower()
            for name in _ID_FIELDS
            if isinstance(value := record.get(name), str) and _looks_like_pseudonym(value)
        }
        ids |= record_ids
        # A record's ids are its evidence; its text is used only when it carries no id (a text
        # is shared by every license that received the post, so it would blur the answer).
        text = record.get("text")
        if not record_ids and isinstance(text, str) and text.strip():
            texts.add(text)
    return LeakedMaterial(frozenset(ids), frozenset(texts))


def material_from_lines(lines: Iterable[str]) -> LeakedMaterial:
    """Plain lines: each a pseudonym, or else a text."""
    ids: set[str] = set()
    texts: set[str] = set()
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if _looks_like_pseudonym(line):
            ids.add(line.lower())
        else:
            texts.add(line)
    return LeakedMaterial(frozenset(ids), frozenset(texts))


def read_leaked_file(path: Path) -> LeakedMaterial:
    """Parquet, JSON Lines (optionally .zst), CSV with a header, or plain lines of ids/texts."""
    raw = path.read_bytes()
    if raw[:4] == b"PAR1":
        return material_from_records(pq.read_table(io.BytesIO(raw)).to_pylist())
    if raw[:4] == b"\x28\xb5\x2f\xfd":  # zstd frame
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("{"):
        records = []
        for line in lines:
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                records.append(value)
        return material_from_records(records)
    if lines and "," in lines[0] and any(name in lines[0] for name in (*_ID_FIELDS, "text")):
        return material_from_records(csv.DictReader(io.StringIO(text)))
    return material_from_lines(lines)


def _looks_like_pseudonym(value: str) -> bool:
    return len(value) == 32 and set(value.lower()) <= _HEX


def attribute(material: LeakedMaterial) -> list[Attribution]:
    """Attributions for the leaked material, strongest evidence first."""
    found: dict[int, Attribution] = {}

    def attribution(license_: License) -> Attribution:
        if license_.pk not in found:
            found[license_.pk] = Attribution(license_.pk, license_.organization.slug)
        return found[license_.pk]

    text_hashes = {hashlib.sha256(text.encode()).hexdigest() for text in material.texts}
    canaries = Canary.objects.select_related("license__organization").filter(
        post_pseudonym__in=material.ids
    ) | Canary.objects.select_related("license__organization").filter(
        author_pseudonym__in=material.ids
    )
    canaries = canaries | Canary.objects.select_related("license__organization").filter(
        text_sha256__in=text_hashes
    )
    for canary in canaries.distinct():
        entry = attribution(canary.license)
        entry.canaries += 1
        entry.extract_ids.add(canary.extract_id)

    if material.ids:
        _match_pseudonyms(material.ids, attribution)
    if material.texts:
        _match_texts(material.texts, attribution)
    return sorted(
        found.values(),
        key=lambda a: (-a.canaries, -a.pseudonyms, -a.texts, a.license_id),
    )


def _match_pseudonyms(ids: frozenset[str], attribution: Any) -> None:
    extracts = Extract.objects.filter(state=ExtractState.READY).select_related(
        "license__organization"
    )
    for extract in extracts:
        pseudonymize = Pseudonymizer.for_license(extract.license.pseudonym_key)
        matched = 0
        for blob in extract.parts.values_list("delivered_ids", flat=True):
            for post_id in decode_ids(bytes(blob)):
                if pseudonymize("post", post_id) in ids:
                    matched += 1
        if matched:
            entry = attribution(extract.license)
            entry.pseudonyms += matched
            entry.extract_ids.add(extract.pk)


def _match_texts(texts: frozenset[str], attribution: Any) -> None:
    from licensing.services.delivery_record import extracts_holding

    post_ids = list(
        Post.objects.filter(text__in=sorted(texts)).values_list("platform_id", flat=True)
    )
    holders = extracts_holding(post_ids)
    extracts = {
        extract.pk: extract
        for extract in Extract.objects.filter(
            pk__in={e for ids in holders.values() for e in ids}
        ).select_related("license__organization")
    }
    for extract_ids in holders.values():
        for license_ in {extracts[e].license for e in extract_ids}:
            entry = attribution(license_)
            entry.texts += 1
            entry.extract_ids.update(e for e in extract_ids if extracts[e].license == license_)
