"""Who received what: the compact record of which posts an extract part delivered.

Each part stores its delivered platform ids sorted, delta-encoded as little-endian uint64 and
zstd-compressed (about 3-4 bytes per id for snowflake ids), beside the part's id range. At 10^8
delivered rows that is a few hundred MB in a few hundred rows of `licensing_extractpart`
instead of 10^8 index entries; "which licenses hold post X" reads only the parts whose range
covers X (an index on the range) and decodes them. See docs/DELIVERY_RECORD.md.
"""

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate, pairwise

import zstandard

from licensing.models.extracts import ExtractPart, ExtractState

_LEVEL = 6


def encode_ids(sorted_ids: Sequence[int]) -> bytes:
    """Sorted ascending platform ids -> compressed bytes."""
    if not sorted_ids:
        return b""
    deltas = array("Q", [sorted_ids[0]])
    deltas.extend(b - a for a, b in pairwise(sorted_ids))
    if sys.byteorder == "big":  # pragma: no cover - the stored form is little-endian
        deltas.byteswap()
    return zstandard.ZstdCompressor(level=_LEVEL).compress(deltas.tobytes())


def decode_ids(blob: bytes) -> list[int]:
    if not blob:
        return []
    deltas = array("Q")
    deltas.frombytes(zstandard.ZstdDecompressor().decompress(blob))
    if sys.byteorder == "big":  # pragma: no cover
        deltas.byteswap()
    return list(accumulate(deltas))


def extracts_holding(post_ids: Iterable[int]) -> dict[int, set[int]]:
    """post id -> ids of the ready extracts that delivered it (for deletion notices and
    compensation). Reads only the parts whose id range covers one of the posts."""
    wanted = sorted(set(post_ids))
    holders: dict[int, set[int]] = {post_id: set() for post_id in wanted}
    if not wanted:
        return holders
    parts = ExtractPart.objects.filter(
        extract__state=ExtractState.READY,
        first_post_id__lte=wanted[-1],
        last_post_id__gte=wanted[0],
    ).values_list("extract_id", "first_post_id", "last_post_id", "delivered_ids")
    for extract_id, first, last, blob in parts.iterator(chunk_size=50):
        # Both lists are sorted: bisect the part's range out of the wanted ids, then look each
        # candidate up in the decoded part (O(k log n), not a scan of everything wanted).
        candidates = wanted[bisect_left(wanted, first) : bisect_right(wanted, last)]
        if not candidates:
            continue
        delivered = decode_ids(bytes(blob))
        for post_id in candidates:
            at = bisect_left(delivered, post_id)
            if at < len(delivered) and delivered[at] == post_id:
                holders[post_id].add(extract_id)
    return holders
