"""What a licensee receives for one eligible record: the license's fields, ids pseudonymized.

Used by the preview and by the extract job alike, so a preview shows records exactly as they
would be delivered. Pseudonyms are HMAC-SHA256 under a per-license key: the same post gets the
same pseudonym in every extract of one license, and unrelated pseudonyms in other licenses; the
key never leaves the server.
"""

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings

# Record keys holding platform ids, and the namespace each is pseudonymized in.
_PSEUDONYMIZED = {
    "post_id": "post",
    "referenced_post_id": "post",
    "author_id": "user",
    "referenced_author_id": "user",
}
PSEUDONYM_HEX_LENGTH = 32  # 128 bits: collisions are negligible at 10^9 records


class Pseudonymizer:
    """HMAC-SHA256 pseudonyms under one key."""

    # Authors and quoted posts repeat across an extract; remembering recent pseudonyms saves
    # most HMACs. Bounded so a worker's memory stays flat.
    CACHE_SIZE = 100_000

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cache: dict[tuple[str, int], str] = {}

    def __call__(self, namespace: str, platform_id: int) -> str:
        cached = self._cache.get((namespace, platform_id))
        if cached is not None:
            return cached
        message = f"{namespace}:{platform_id}".encode()
        # hmac.digest is the one-shot C path: several times faster than hmac.new per id.
        pseudonym = hmac.digest(self._key, message, "sha256").hex()[:PSEUDONYM_HEX_LENGTH]
        if len(self._cache) >= self.CACHE_SIZE:
            self._cache.clear()
        self._cache[(namespace, platform_id)] = pseudonym
        return pseudonym

    def many(self, namespace: str, platform_ids: list[int], *, cache: bool = True) -> list[str]:
        """Pseudonyms of many ids (the columnar extract path); `cache=False` for ids that never
        repeat (a part's own posts), where the cache would only cost."""
        if cache:
            return [self(namespace, platform_id) for platform_id in platform_ids]
        key, prefix = self._key, f"{namespace}:"
        return [
            hmac.digest(key, f"{prefix}{platform_id}".encode(), "sha256").hex()[
                :PSEUDONYM_HEX_LENGTH
            ]
            for platform_id in platform_ids
        ]

    @classmethod
    def for_license(cls, pseudonym_key: str) -> "Pseudonymizer":
        return cls(bytes.fromhex(pseudonym_key))

    @classmethod
    def for_preview(cls, dataset_slug: str) -> "Pseudonymizer":
        """A key used only for previews, derived from the server secret, so preview pseudonyms
        cannot be linked to any license's."""
        key = hmac.new(
            settings.SECRET_KEY.encode(), f"preview:{dataset_slug}".encode(), hashlib.sha256
        ).digest()
        return cls(key)


def shape_record(
    record: dict[str, Any], *, fields: Iterable[str], pseudonymize: Pseudonymizer
) -> dict[str, Any]:
    """Keep only the licensed `fields` (in that order), pseudonymizing ids. Dates as ISO 8601."""
    shaped: dict[str, Any] = {}
    for name in fields:
        value = record.get(name)
        if name in _PSEUDONYMIZED and value is not None:
            value = pseudonymize(_PSEUDONYMIZED[name], value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        shaped[name] = value
    return shaped
