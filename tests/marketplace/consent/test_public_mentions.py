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


@pytest.mark.parametrize(
    "handle", ['quo"te', "back\\slash", "com,ma", "{brace}", "sp ace", "Mixed_Case", "NULL", "é"]
)
def test_lookup_matches_handles_that_an_array_literal_must_quote(handle: str) -> None:
    # Given a public account with an awkward handle, a public one found by id, a protected one
    wanted = CreatorFactory(handle=handle)
    by_id = CreatorFactory()
    protected = CreatorFactory(is_protected=True)
    mentions = PublicMentions(as_of=T0, licensee_country=None)

    # When a chunk asks about them (and a handle nobody has)
    found = mentions.resolve_accounts(
        {by_id.platform_id, protected.platform_id},
        {handle.lower(), protected.handle.lower(), 'no"body\\'},
    )

    # Then exactly the public ones are known (by id and handle), matched case-insensitively
    assert found.handles == {handle.lower(), by_id.handle.lower()}
    assert found.platform_ids == {wanted.platform_id, by_id.platform_id}
