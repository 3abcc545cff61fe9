"""PublicMentions: which mentioned accounts are public, looked up once each, in bounded memory."""

from typing import Any

import pytest

from marketplace.consent.eligibility import PublicMentions, entity_mentions
from tests.factories_corpus import T0, CreatorFactory

pytestmark = pytest.mark.django_db


def test_answers_stay_right_after_the_bound_makes_it_forget(
    monkeypatch: Any, django_assert_num_queries: Any
) -> None:
    # Given five public accounts, one protected, and a bound of three accounts
    public = CreatorFactory.create_batch(5)
    protected = CreatorFactory(is_protected=True)
    monkeypatch.setattr(PublicMentions, "MAX_ACCOUNTS", 3)
    mentions = PublicMentions(as_of=T0, licensee_country=None)

    # When chunks ask about more accounts than the bound, by handle and by id
    first = mentions.resolve_accounts({public[0].platform_id}, {public[1].handle.lower()})
    assert first.platform_ids >= {public[0].platform_id}
    assert public[1].handle.lower() in first.handles
    with django_assert_num_queries(0):  # nothing new: answered from memory
        mentions.resolve_accounts({public[0].platform_id}, set())
    second = mentions.resolve_accounts(
        {public[2].platform_id, protected.platform_id}, {public[3].handle, protected.handle}
    )

    # Then each answer covers the chunk's own accounts, and memory stayed within the bound
    assert {public[2].platform_id} <= second.platform_ids
    assert protected.platform_id not in second.platform_ids
    assert public[3].handle in second.handles
    assert protected.handle not in second.handles
    assert mentions.accounts_checked <= 4  # forgot the first chunk's before this one's


def test_entity_mentions_take_numeric_ids_and_lowercase_usernames() -> None:
    ids, handles = entity_mentions(
        [[{"id": "42", "username": "Bob"}, {"id": "x1", "username": ""}, "junk"], None],
        set(),
        {"carol"},
    )
    assert ids == {42}
    assert handles == {"bob", "carol"}
