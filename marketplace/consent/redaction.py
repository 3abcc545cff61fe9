"""Redaction of emitted text: mentions of accounts not known to be public, e-mail addresses and
phone numbers.

A mention stays only when the account is known to the corpus and public at `as_of` (not
protected, deleted, suspended or withheld for the licensee); everything else becomes
`@[redacted]`, because naming a private or vanished account is itself personal data. The
caller looks the accounts up (`eligibility.public_accounts`); this module is pure so it can be
tested exhaustively. Over-redaction is the safe failure: a number that merely looks like a phone
number is removed too.
"""

import re
from collections.abc import Iterable, Set
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

REDACTED_MENTION = "@[redacted]"
REDACTED_EMAIL = "[redacted email]"
REDACTED_PHONE = "[redacted phone]"

# Platform handles are ASCII letters, digits and underscores; a mention is "@" not preceded by
# a word character (so "bob@example.com" is an e-mail, handled first, not a mention).
_MENTION = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]+)")
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
)
# What every `_EMAIL` match contains: "@", then a domain label, then a dot.
_EMAIL_DOMAIN_START = re.compile(r"@[A-Za-z0-9-]+\.")
# A run of digits with the separators phone numbers use (spaces, dots, dashes, parentheses),
# optionally starting with "+". Whether it is a phone number is decided in `_phone_or_not`.
_PHONE_CANDIDATE = re.compile(r"(?<![\w+.,/:@-])\+?\(?\d[\d\s().-]{5,}\d(?![\w:])")
_ISO_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
_DIGIT = re.compile(r"\d")
_DECIMAL = re.compile(r"^\d+\.\d+$")
_YEAR_RANGE = re.compile(r"^\d{4}\s*-\s*\d{4}$")
# The fewest decimal digits a phone number has: text with fewer is never changed by the phone
# rule (`may_redact` relies on it).
_PHONE_MIN_DIGITS = 7
# For RE2 (pyarrow): some `_PHONE_MIN_DIGITS` digits anywhere. A match, not a count: RE2 stops
# at the seventh digit and runs once per text (counting every digit was 2.7x slower).
_AT_LEAST_PHONE_MIN_DIGITS = r"(?:\p{Nd}[^\p{Nd}]*){" + str(_PHONE_MIN_DIGITS) + "}"


@dataclass(frozen=True)
class PublicAccounts:
    """Accounts known to be public: by platform id and by lower-case handle."""

    platform_ids: Set[int] = frozenset()
    handles: Set[str] = frozenset()


def mentioned_handles(text: str) -> set[str]:
    """The lower-case handles mentioned in `text` (after e-mail addresses are set aside)."""
    if "@" not in text:  # most posts: skip both expressions
        return set()
    return {match.group(1).lower() for match in _MENTION.finditer(_EMAIL.sub(" ", text))}


def _mention_ids(mentions: Any) -> dict[str, int | None]:
    """handle (lower-case) -> platform id from the post's `entities.mentions`, when given."""
    known: dict[str, int | None] = {}
    for mention in mentions if isinstance(mentions, list) else []:
        if not isinstance(mention, dict) or not mention.get("username"):
            continue
        raw_id = str(mention.get("id", ""))
        known[str(mention["username"]).lower()] = int(raw_id) if raw_id.isdigit() else None
    return known


def _phone_or_not(match: re.Match[str]) -> str:
    candidate = match.group(0).strip()
    digits = sum(character.isdigit() for character in candidate)
    if _ISO_DATE.match(candidate) or _DECIMAL.match(candidate) or _YEAR_RANGE.match(candidate):
        return match.group(0)
    if candidate.startswith("+"):
        return REDACTED_PHONE if _PHONE_MIN_DIGITS <= digits <= 15 else match.group(0)
    has_separator = any(not character.isdigit() for character in candidate)
    if (has_separator and _PHONE_MIN_DIGITS <= digits <= 13) or (
        not has_separator and 10 <= digits <= 13
    ):
        return REDACTED_PHONE
    return match.group(0)


def redact_text(text: str, *, mentions: Any = (), public: PublicAccounts) -> str:
    """`text` with e-mail addresses, phone numbers and mentions of accounts not known to be
    public replaced. A mention the post's entities resolve to an id is judged by that id (handles
    can be reused); any other mention by its handle. Pure."""

    def mention(match: re.Match[str]) -> str:
        handle = match.group(1).lower()
        platform_id = resolved.get(handle)
        is_public = (
            platform_id in public.platform_ids
            if platform_id is not None
            else handle in public.handles
        )
        return match.group(0) if is_public else REDACTED_MENTION

    # Cheap exact guards first (extracts redact every delivered text, and the full expressions
    # cost several microseconds each): e-mails and mentions need an "@", an e-mail also a domain
    # label and a dot after it, a phone number `_PHONE_MIN_DIGITS` digits.
    if "@" in text:
        resolved = _mention_ids(mentions)
        if _EMAIL_DOMAIN_START.search(text):
            text = _EMAIL.sub(REDACTED_EMAIL, text)
        text = _MENTION.sub(mention, text)
    if _too_few_digits_for_a_phone(text):
        return text
    return _PHONE_CANDIDATE.sub(_phone_or_not, text)


def _too_few_digits_for_a_phone(text: str) -> bool:
    if text.isascii():  # then Python's \d is exactly 0-9, and str.count is fast
        return sum(map(text.count, "0123456789")) < _PHONE_MIN_DIGITS
    return _DIGIT.search(text) is None


def may_redact(texts: pa.Array) -> pa.Array:
    """For a whole Arrow column of texts at once: False where `redact_text` certainly returns
    the text unchanged, whatever the mentions and public accounts; True where it may not. So a
    caller runs `redact_text` only where this is True (the columnar extract path).

    Exact reasoning, not a heuristic: e-mails and mentions need an "@"; the phone rule replaces
    only a candidate holding at least `_PHONE_MIN_DIGITS` characters that Python's `\\d`
    matches, which is Unicode category Nd, what RE2's `\\p{Nd}` counts (a test checks every
    code point, so a Unicode upgrade on either side cannot slip through)."""
    has_at = pc.match_substring(texts, "@")
    many_digits = pc.match_substring_regex(texts, _AT_LEAST_PHONE_MIN_DIGITS)
    return pc.fill_null(pc.or_(has_at, many_digits), False)


def mention_candidates(texts: pa.Array) -> set[str]:
    """For a whole Arrow column of texts at once: every lower-case run of handle characters
    right after an "@", distinct. A superset of the union of `mentioned_handles` over the texts
    (each handle it finds is the run after an "@" of the text itself: blanking e-mails first
    can only remove mentions, never lengthen one), so looking these up suffices to redact
    them all; the extra words (an e-mail's domain) only cost a lookup."""
    after_at = pc.list_flatten(pc.list_slice(pc.split_pattern(texts, "@"), 1))
    runs = pc.struct_field(pc.extract_regex(after_at, r"^(?P<handle>[A-Za-z0-9_]+)"), [0])
    return set(pc.utf8_lower(runs.drop_null()).to_pylist())


def public_accounts_from(rows: Iterable[tuple[int, str]]) -> PublicAccounts:
    """Build PublicAccounts from (platform id, handle) pairs."""
    pairs = list(rows)
    return PublicAccounts(
        platform_ids=frozenset(platform_id for platform_id, _ in pairs),
        handles=frozenset(handle.lower() for _, handle in pairs),
    )
