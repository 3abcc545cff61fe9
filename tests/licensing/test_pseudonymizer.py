"""The pseudonymizer's fast HMAC (precomputed keyed states) gives exactly HMAC-SHA256."""

import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from licensing.services.delivery import PSEUDONYM_HEX_LENGTH, Pseudonymizer


@settings(max_examples=300, database=None)
@given(
    key=st.binary(min_size=0, max_size=200),  # shorter and longer than SHA-256's 64-byte block
    namespace=st.sampled_from(["post", "user"]),
    platform_ids=st.lists(st.integers(min_value=0, max_value=2**63 - 1), max_size=5),
)
def test_pseudonyms_are_truncated_hmac_sha256(
    key: bytes, namespace: str, platform_ids: list[int]
) -> None:
    pseudonymize = Pseudonymizer(key)
    expected = [
        hmac.digest(key, f"{namespace}:{platform_id}".encode(), "sha256").hex()[
            :PSEUDONYM_HEX_LENGTH
        ]
        for platform_id in platform_ids
    ]
    assert [pseudonymize(namespace, platform_id) for platform_id in platform_ids] == expected
    assert pseudonymize.many(namespace, platform_ids, cache=False) == expected
    assert pseudonymize.many(namespace, platform_ids) == expected
