"""Creator self-service: a creator's own AI consent per purpose and compensation opt-in.

A creator's choice is one more signal in the compliance ledger, in exactly the envelope the
platform uses (`ai_opt_in`/`ai_opt_out` with purposes, `compensation_opt_in`/`..._opt_out`),
with `source="creator"` and `event_at` = the moment of the choice. Last-writer-wins then decides
between the creator's choice and the platform's signals by `event_at`, whatever order they
arrive in, and every extract started after the choice sees it (extracts evaluate the ledger at
their start instant).

Unsetting a purpose is not supported: the platform has no "unset" signal, so a cleared choice
could not be represented in the ledger or folded against the platform's events. A creator moves
between `allow` and `deny` only; `deny` is the way to withdraw.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from marketplace.consent.ledger import parse_message, record_and_apply
from marketplace.errors import Conflict, InvalidInput, NotAllowed
from marketplace.models import ConsentChoice, ConsentPurpose, Creator, LedgerEntry, SubjectKind
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event

CREATOR_SOURCE = "creator"
# What a creator can choose, and what a purpose can be in (unset: never chosen).
SETTABLE_CHOICES = (ConsentChoice.ALLOW.value, ConsentChoice.DENY.value)
CONSENT_STATES = (*SETTABLE_CHOICES, "unset")
HISTORY_LIMIT = 200

PURPOSE_EXPLANATIONS: dict[str, str] = {
    ConsentPurpose.TRAINING: (
        "Your public posts may be part of the text an AI model learns language from when it is "
        "built or pre-trained."
    ),
    ConsentPurpose.FINE_TUNING: (
        "Your public posts may be used to adapt an existing AI model to a task, topic or style "
        "(fine-tuning)."
    ),
    ConsentPurpose.EVALUATION: (
        "Your public posts may be used to test and measure how well AI models perform; the "
        "models are not trained on them."
    ),
    ConsentPurpose.ANALYTICS: (
        "Your public posts may be counted and analysed in aggregate (trends, topics, sentiment); "
        "no AI model is trained on them."
    ),
}
CHOICE_EXPLANATIONS: dict[str, str] = {
    "allow": "Licensees may use your public posts for this purpose.",
    "deny": "Your posts are never delivered for this purpose, whatever the dataset.",
    "unset": (
        "You have not chosen yet. Opt-out datasets include your posts for this purpose until "
        "you deny it; opt-in datasets leave them out until you allow it."
    ),
}


@dataclass(frozen=True)
class CreatorHistoryEntry:
    kind: str
    family: str
    value: str
    event_at: datetime
    received_at: datetime
    source: str


def consent_state(creator: Creator) -> dict[str, str]:
    """The creator's current choice per purpose: "allow", "deny" or "unset"."""
    return {purpose: creator.consent_for(purpose) or "unset" for purpose in ConsentPurpose.values}


def _validated_consent(consent: dict[str, str]) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    for purpose, choice in consent.items():
        field = f"consent.{purpose}"
        if purpose not in ConsentPurpose.values:
            errors[field] = [
                f"Unknown purpose. Known purposes: {', '.join(ConsentPurpose.values)}."
            ]
        elif choice not in SETTABLE_CHOICES:
            errors[field] = [
                "Choose allow or deny; a choice cannot be unset once made (deny withdraws it)."
            ]
    if errors:
        field, messages = next(iter(errors.items()))
        raise InvalidInput(f"{field}: {messages[0]}", code="invalid", fields=errors)
    return dict(consent)


def _check_actor(actor: Actor, creator: Creator) -> None:
    """Only the creator's own linked user (or the system, for seeding) may change their choices."""
    if actor.api_key is not None:
        raise NotAllowed("Creators change their choices in person, not with an API key.")
    if actor.user is not None and (creator.user_id is None or actor.user.pk != creator.user_id):
        raise NotAllowed("You can only change your own choices.")


def _message(kind: str, creator: Creator, event_at: datetime, **fields: Any) -> dict[str, Any]:
    body = {"user": {"id": str(creator.platform_id)}, "event_at": event_at.isoformat(), **fields}
    return {"data": {kind: body}}


def update_creator_preferences(
    *,
    actor: Actor,
    creator: Creator,
    consent: dict[str, str],
    compensation_opt_in: bool | None = None,
) -> Creator:
    """Record the creator's consent choices and compensation opt-in as ledger signals and apply
    them.

    Invariant: the creator's state columns always equal the ledger's last-writer-wins fold; a
    choice is a ledger entry with `event_at` = now and `source="creator"`, so a platform signal
    with a later `event_at` overrides it and one with an earlier `event_at` does not.
    Only differences from the current state are recorded (a resubmitted form adds nothing).
    Side effects: ledger entries, updated state columns, and one `creator.preferences_changed`
    audit event when anything changed, all in one transaction. If a signal dated after now
    already decides a requested family, nothing is written and Conflict is raised.
    Safe to run twice: the second run finds nothing to change.
    """
    requested = _validated_consent(consent)
    _check_actor(actor, creator)
    with transaction.atomic():
        creator = Creator.objects.select_for_update().get(pk=creator.pk)
        before = consent_state(creator)
        changed_consent = {
            purpose: choice for purpose, choice in requested.items() if before[purpose] != choice
        }
        compensation_changed = (
            compensation_opt_in is not None and compensation_opt_in != creator.compensation_opt_in
        )
        if not changed_consent and not compensation_changed:
            return creator

        event_at = timezone.now()
        messages = []
        for kind, choice in (("ai_opt_in", "allow"), ("ai_opt_out", "deny")):
            purposes = sorted(p for p, c in changed_consent.items() if c == choice)
            if purposes:
                messages.append(_message(kind, creator, event_at, purposes=purposes))
        if compensation_changed:
            kind = "compensation_opt_in" if compensation_opt_in else "compensation_opt_out"
            messages.append(_message(kind, creator, event_at))
        signals = [
            signal
            for message in messages
            for signal in parse_message(message, source=CREATOR_SOURCE)
        ]
        record_and_apply(signals)

        creator.refresh_from_db()
        after = consent_state(creator)
        overridden = [
            purpose for purpose, choice in changed_consent.items() if after[purpose] != choice
        ]
        if compensation_changed and creator.compensation_opt_in != compensation_opt_in:
            overridden.append("compensation_opt_in")
        if overridden:
            # Only a signal dated in the future can beat "now"; rolling back keeps the ledger
            # free of choices that never took effect.
            raise Conflict(
                "A newer signal from the platform already decides "
                f"{', '.join(overridden)}; reload and try again later.",
                code="newer_signal_wins",
            )

        data: dict[str, Any] = {
            "consent": {
                purpose: {"from": before[purpose], "to": choice}
                for purpose, choice in sorted(changed_consent.items())
            },
            "event_at": event_at.isoformat(),
        }
        if compensation_changed:
            data["compensation_opt_in"] = {
                "from": not compensation_opt_in,
                "to": compensation_opt_in,
            }
        record_audit_event(
            actor=actor, action="creator.preferences_changed", target=creator, data=data
        )
    return creator


def creator_history(*, creator: Creator, limit: int = HISTORY_LIMIT) -> list[CreatorHistoryEntry]:
    """The ledger entries about this creator's account (consent, compensation and account-state
    signals from the platform or the creator), newest `event_at` first, at most `limit`.
    Read-only."""
    entries = LedgerEntry.objects.filter(
        subject_kind=SubjectKind.USER, subject_platform_id=creator.platform_id
    ).order_by("-event_at", "-id")[:limit]
    return [
        CreatorHistoryEntry(
            kind=entry.kind,
            family=entry.family,
            value=entry.value,
            event_at=entry.event_at,
            received_at=entry.received_at,
            source=entry.source,
        )
        for entry in entries
    ]
