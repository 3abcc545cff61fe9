"""Canary records: a few synthetic records planted in every extract, derived from the license's
secret and the extract's instant, shaped exactly like real records of the license's fields.

They are never billed, never counted against the record cap, never in the delivery record and
never attributed to a creator; the manifest's row counts include them (a count that differs from
the lines of a file would point at them). Finding one in a leaked file names the extract and
license it came from (licensing/services/leaks.py).
"""

import hashlib
import hmac
import random
from datetime import UTC, timedelta
from typing import Any

from django.conf import settings

from licensing.models import Canary, Extract, ExtractPart
from licensing.services.delivery import PSEUDONYM_HEX_LENGTH
from marketplace.consent.scope import Scope

# Ordinary words for canary texts: plausible posts, nothing that could name a real person.
_WORDS = [
    "morning",
    "coffee",
    "walk",
    "city",
    "river",
    "light",
    "rain",
    "weekend",
    "market",
    "garden",
    "music",
    "book",
    "train",
    "late",
    "early",
    "friends",
    "dinner",
    "bread",
    "spring",
    "autumn",
    "winter",
    "summer",
    "quiet",
    "street",
    "window",
    "bike",
    "park",
    "project",
    "team",
    "meeting",
    "idea",
    "small",
    "big",
    "good",
    "great",
    "new",
    "old",
    "blue",
    "green",
    "happy",
    "long",
    "short",
    "weather",
    "sunset",
    "lunch",
    "tea",
    "library",
    "museum",
    "concert",
    "film",
    "game",
    "match",
    "season",
    "trip",
    "road",
    "home",
]


def _seed(license_key: str, extract: Extract, index: int, purpose: str) -> bytes:
    message = f"canary:{extract.as_of.isoformat()}:{index}:{purpose}".encode()
    return hmac.digest(bytes.fromhex(license_key), message, "sha256")


def _hex(seed: bytes) -> str:
    return seed.hex()[:PSEUDONYM_HEX_LENGTH]


def canary_post_pseudonym(extract: Extract, index: int) -> str:
    """The post id canary `index` of `extract` carries (its `post_id` field)."""
    return _hex(_seed(extract.license.pseudonym_key, extract, index, "post"))


def canary_record(extract: Extract, index: int, fields: list[str]) -> dict[str, Any]:
    """Canary `index` of `extract`, shaped for the license's `fields` (deterministic)."""
    license_ = extract.license
    key = license_.pseudonym_key
    rng = random.Random(_seed(key, extract, index, "content"))
    scope = Scope.from_dict(license_.scope or {})
    start = scope.date_from or (extract.as_of - timedelta(days=365))
    end = min(scope.date_to or extract.as_of, extract.as_of)
    span = max(1, int((end - start).total_seconds()) - 1)
    created_at = (start + timedelta(seconds=rng.randrange(span))).astimezone(UTC)
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 18))]
    hashtags = list(scope.hashtags_all) or ([scope.hashtags_any[0]] if scope.hashtags_any else [])
    text = " ".join(words) + "".join(f" #{tag}" for tag in hashtags)
    full = {
        "post_id": canary_post_pseudonym(extract, index),
        "created_at": created_at.replace(microsecond=0).isoformat(),
        "text": text[0].upper() + text[1:],
        "lang": scope.languages[0] if scope.languages else "en",
        "hashtags": hashtags,
        "kind": "original",
        "possibly_sensitive": False,
        "author_id": _hex(_seed(key, extract, index, "author")),
        "author_handle": f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}{rng.randrange(10, 9999)}",
        "referenced_post_id": None,
        "referenced_text": None,
        "referenced_author_id": None,
        "referenced_author_handle": None,
        "public_metrics": {
            "like_count": rng.randrange(0, 40),
            "quote_count": rng.randrange(0, 2),
            "reply_count": rng.randrange(0, 4),
            "retweet_count": rng.randrange(0, 6),
        },
        "geo": None,
    }
    return {name: full[name] for name in fields}


def plant_canaries(extract: Extract, parts: list[ExtractPart], fields: list[str]) -> list[Canary]:
    """Decide where the extract's canaries go (part and row, from the license secret) and
    record them for attribution. None in an extract without rows."""
    real_rows = sum(part.rows_expected for part in parts)
    if not parts or real_rows == 0:
        return []
    canaries = []
    for index in range(settings.EXTRACT_CANARIES):
        placement = int.from_bytes(_seed(extract.license.pseudonym_key, extract, index, "where"))
        part = parts[placement % len(parts)]
        record = canary_record(extract, index, ["post_id", "author_id", "text"])
        canaries.append(
            Canary(
                extract=extract,
                license=extract.license,
                index=index,
                part_index=part.index,
                position=(placement // len(parts)) % (part.rows_expected + 1),
                post_pseudonym=record["post_id"],
                author_pseudonym=record["author_id"],
                text_sha256=hashlib.sha256(record["text"].encode()).hexdigest(),
            )
        )
    return Canary.objects.bulk_create(canaries)


def canaries_for_part(part: ExtractPart) -> list[tuple[int, int]]:
    """(position, canary index) of the part's canaries, in writing order."""
    return sorted(
        Canary.objects.filter(extract_id=part.extract_id, part_index=part.index).values_list(
            "position", "index"
        )
    )
