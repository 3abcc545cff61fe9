"""Redaction of emitted text: mentions of accounts not known to be public, e-mail addresses and
phone numbers; ordinary numbers, dates and handles of public accounts stay."""

import re
import sys

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.consent import redaction
from marketplace.consent.redaction import (
    _PHONE_MIN_DIGITS,
    REDACTED_EMAIL,
    REDACTED_MENTION,
    REDACTED_PHONE,
    PublicAccounts,
    may_redact,
    mention_candidates,
    mentioned_handles,
    public_accounts_from,
    redact_text,
)

PUBLIC = PublicAccounts(platform_ids=frozenset({11}), handles=frozenset({"alice", "bob_99"}))


def redact(text: str, mentions: object = ()) -> str:
    return redact_text(text, mentions=mentions, public=PUBLIC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi @alice", "hi @alice"),
        ("hi @ALICE!", "hi @ALICE!"),  # handles are case-insensitive
        ("@bob_99: yes", "@bob_99: yes"),
        ("hi @carol", f"hi {REDACTED_MENTION}"),  # unknown to the corpus
        ("@alice and @carol and @alice_", f"@alice and {REDACTED_MENTION} and {REDACTED_MENTION}"),
        ("(@carol)", f"({REDACTED_MENTION})"),
        ("RT @carol: words", f"RT {REDACTED_MENTION}: words"),
        ("no mention @ all", "no mention @ all"),
    ],
)
def test_mentions_of_accounts_not_known_to_be_public_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_resolved_mention_is_judged_by_its_id_not_its_handle() -> None:
    # "alice" is a public handle, but this post's entities say the mention is account 99 (a
    # different, non-public account that holds the handle now or held it then).
    assert redact("hi @alice", [{"username": "alice", "id": "99"}]) == f"hi {REDACTED_MENTION}"
    # "dora" is unknown by handle, but resolved to the public account 11.
    assert redact("hi @Dora", [{"username": "dora", "id": "11"}]) == "hi @Dora"
    # A malformed entity falls back to the handle.
    assert redact("hi @alice", [{"username": "alice", "id": "x"}, "junk"]) == "hi @alice"


@pytest.mark.parametrize(
    "email",
    ["a.b@example.org", "first+tag@sub.example.co.uk", "X_Y-z@mail.example.com"],
)
def test_email_addresses_are_redacted_and_not_taken_for_mentions(email: str) -> None:
    assert redact(f"write to {email} today") == f"write to {REDACTED_EMAIL} today"
    assert mentioned_handles(f"write to {email}") == set()


@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "+1-202-555-0143",
        "+33612345678",
        "(202) 555-0143",
        "202-555-0143",
        "202.555.0143",
        "07946 095812",
        "020 7946 0958",
        "2025550143",
    ],
)
def test_phone_numbers_are_redacted(phone: str) -> None:
    assert redact(f"call {phone} now") == f"call {REDACTED_PHONE} now"


@pytest.mark.parametrize(
    "text",
    [
        "the year 2024 was long",
        "on 2024-05-01 at 12:30",
        "on 01/05/2024",
        "pi is 3.14159265",
        "from 1990 - 2024",
        "42 likes and 1,000,000 views",
        "$1,299.99",
        "order 12345",
        "version 1.2.3",
        "https://t.co/abc123",
    ],
)
def test_ordinary_numbers_dates_and_links_are_kept(text: str) -> None:
    assert redact(text) == text


def test_everything_at_once() -> None:
    text = "@carol says mail @alice at alice@example.org or call +1 202 555 0143"
    assert redact(text) == (
        f"{REDACTED_MENTION} says mail @alice at {REDACTED_EMAIL} or call {REDACTED_PHONE}"
    )


def test_public_accounts_from_rows_lowercases_handles() -> None:
    accounts = public_accounts_from([(5, "MixedCase"), (6, "lower")])
    assert accounts == PublicAccounts(
        platform_ids=frozenset({5, 6}), handles=frozenset({"mixedcase", "lower"})
    )


@settings(max_examples=200, database=None)
@given(
    handle=st.from_regex(r"[A-Za-z0-9_]{1,15}", fullmatch=True),
    before=st.sampled_from(["", " ", "hi ", "(", "RT "]),
    after=st.sampled_from(["", " ", "!", ":", ")", " ok"]),
)
def test_no_unknown_handle_survives(handle: str, before: str, after: str) -> None:
    """Property: a mention of a handle nobody vouches for never appears in the output."""
    redacted = redact_text(f"{before}@{handle}{after}", public=PublicAccounts())
    assert f"@{handle}" not in redacted
    assert redacted == f"{before}{REDACTED_MENTION}{after}"


def test_may_redact_counts_exactly_the_digits_python_matches() -> None:
    """`may_redact` finds digits with RE2's \\p{Nd}; the phone rule counts Python's \\d. Over
    every code point, RE2 must flag at least what Python matches (here: the character written
    as many times as a phone number has digits), or a phone number written in a script's digits
    could skip redaction. This fails if a Unicode upgrade on either side ever makes them differ
    in the unsafe direction."""
    characters = [
        chr(code)
        for code in range(sys.maxunicode + 1)
        if not 0xD800 <= code <= 0xDFFF and chr(code) != "@"
    ]
    python_digits = [bool(re.fullmatch(r"\d", character)) for character in characters]
    flagged = may_redact(
        pa.array([character * _PHONE_MIN_DIGITS for character in characters])
    ).to_pylist()
    missed = [
        f"U+{ord(character):04X}"
        for character, is_digit, is_flagged in zip(characters, python_digits, flagged, strict=True)
        if is_digit and not is_flagged
    ]
    assert sum(python_digits) > 600  # the check ran over the scripts' digits, not only ASCII
    assert missed == []


unicode_text = st.text(
    alphabet=st.sampled_from(
        [*"ab @._-+()/:, 0123456789", "\u0663", "\u0967", "\uff11", "\u00a0", "\u2009"]
    ),
    max_size=40,
)


@settings(max_examples=2000, database=None, deadline=None)
@given(texts=st.lists(unicode_text, min_size=1, max_size=8))
def test_text_may_redact_passes_over_is_never_changed_by_redaction(texts: list[str]) -> None:
    """Property: where `may_redact` says False, `redact_text` returns the text unchanged with
    no public accounts at all (the most redacting case), so skipping it loses nothing."""
    flags = may_redact(pa.array(texts, pa.string())).to_pylist()
    for text, flag in zip(texts, flags, strict=True):
        if not flag:
            assert redact_text(text, public=PublicAccounts()) == text


def test_may_redact_flags_phone_numbers_in_any_script_and_every_at() -> None:
    texts = [
        "call +44 20 7946 0958",
        "call \u0660\u0661\u0662-\u0663\u0664\u0665\u0666",
        "a@b",
        "plain 123",
    ]
    assert may_redact(pa.array(texts)).to_pylist() == [True, True, True, False]
    assert redact_text(texts[1], public=PublicAccounts()) != texts[1]


mention_text = st.lists(
    st.sampled_from([*"aB_9 @.-+!#:", "x@y.io", "@bob", "bob@", ".com", "\u00e9"]), max_size=12
).map("".join)


@settings(max_examples=2000, database=None, deadline=None)
@given(texts=st.lists(mention_text, min_size=1, max_size=6))
def test_mention_candidates_include_every_handle_redaction_would_judge(texts: list[str]) -> None:
    """Property: the columnar path looks up `mention_candidates`; every handle `redact_text`
    will judge (`mentioned_handles`) must be among them, or a public mention would be redacted
    there and not in the row path."""
    candidates = set(mention_candidates(pa.array(texts, pa.string())))
    for text in texts:
        assert mentioned_handles(text) <= candidates


guard_text = st.lists(
    st.sampled_from([*"aZ9_-.+() @", "x@y.io", "u@EX-1.Org", "+44 ", "555-0100", "\u0663"]),
    max_size=16,
).map("".join)


@settings(max_examples=3000, database=None, deadline=None)
@given(text=guard_text)
def test_the_shortcut_guards_never_change_what_is_redacted(text: str) -> None:
    """Property: `redact_text` with its cheap guards gives what the full expressions give."""
    guarded = redact_text(text, public=PUBLIC)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redaction, "_EMAIL_DOMAIN_START", re.compile(""))  # always "maybe"
        patch.setattr(redaction, "_too_few_digits_for_a_phone", lambda text: False)
        assert redact_text(text, public=PUBLIC) == guarded
