"""The creator's own choices: service (ledger, state, audit, history, ordering) and
`GET/PATCH /api/v1/creator/` (shape, validation, who may call it, isolation)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from rest_framework.test import APIClient

from marketplace.consent.ledger import parse_message, record_and_apply, state_at
from marketplace.errors import Conflict, InvalidInput, NotAllowed
from marketplace.models import AuditEvent, Creator, LedgerEntry, SubjectKind
from marketplace.services.actor import Actor
from marketplace.services.creators import creator_history, update_creator_preferences
from tests.conftest import client_for_user
from tests.factories import UserFactory
from tests.factories_creators import CreatorFactory

pytestmark = pytest.mark.django_db

CHOICE_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def linked_creator(**fields: Any) -> Creator:
    return CreatorFactory(user=UserFactory(), **fields)


def platform_signal(kind: str, creator: Creator, event_at: datetime, **fields: Any) -> None:
    """Deliver one platform message, as the compliance importer does."""
    body = {"user": {"id": str(creator.platform_id)}, "event_at": event_at.isoformat(), **fields}
    record_and_apply(parse_message({"data": {kind: body}}, source="platform"))


def ledger_rows(creator: Creator) -> list[tuple[str, str, str, str]]:
    return list(
        LedgerEntry.objects.filter(subject_platform_id=creator.platform_id)
        .order_by("family")
        .values_list("kind", "family", "value", "source")
    )


# --- the service -------------------------------------------------------------------------------


def test_a_change_is_written_to_the_ledger_applied_and_audited() -> None:
    creator = linked_creator()
    actor = Actor(user=creator.user)

    with freeze_time(CHOICE_AT):
        updated = update_creator_preferences(
            actor=actor,
            creator=creator,
            consent={"training": "deny", "analytics": "allow"},
            compensation_opt_in=True,
        )

    assert ledger_rows(creator) == [
        ("compensation_opt_in", "compensation", "on", "creator"),
        ("ai_opt_in", "consent_analytics", "allow", "creator"),
        ("ai_opt_out", "consent_training", "deny", "creator"),
    ]
    entries = LedgerEntry.objects.filter(subject_platform_id=creator.platform_id)
    assert {entry.event_at for entry in entries} == {CHOICE_AT}
    assert entries.get(family="consent_training").payload == {
        "data": {
            "ai_opt_out": {
                "user": {"id": str(creator.platform_id)},
                "purposes": ["training"],
                "event_at": CHOICE_AT.isoformat(),
            }
        }
    }
    updated.refresh_from_db()
    assert (updated.consent_training, updated.consent_training_at) == ("deny", CHOICE_AT)
    assert (updated.consent_analytics, updated.consent_analytics_at) == ("allow", CHOICE_AT)
    assert (updated.consent_fine_tuning, updated.consent_fine_tuning_at) == ("", None)
    assert (updated.compensation_opt_in, updated.compensation_opt_in_at) == (True, CHOICE_AT)
    event = AuditEvent.objects.get(action="creator.preferences_changed")
    assert (event.actor_user, event.target_type, event.target_id) == (
        creator.user,
        "marketplace.creator",
        str(creator.pk),
    )
    assert event.data == {
        "consent": {
            "analytics": {"from": "unset", "to": "allow"},
            "training": {"from": "unset", "to": "deny"},
        },
        "compensation_opt_in": {"from": False, "to": True},
        "event_at": CHOICE_AT.isoformat(),
    }


def test_resubmitting_the_same_choices_records_nothing() -> None:
    creator = linked_creator()
    actor = Actor(user=creator.user)
    choices = {"training": "deny", "evaluation": "allow"}
    update_creator_preferences(
        actor=actor, creator=creator, consent=choices, compensation_opt_in=False
    )

    update_creator_preferences(
        actor=actor, creator=creator, consent=choices, compensation_opt_in=False
    )

    assert LedgerEntry.objects.count() == 2
    assert AuditEvent.objects.filter(action="creator.preferences_changed").count() == 1


def test_the_change_applies_to_extracts_started_after_it_only() -> None:
    creator = linked_creator()
    platform_signal("ai_opt_in", creator, CHOICE_AT - timedelta(days=30), purposes=["training"])

    with freeze_time(CHOICE_AT):
        update_creator_preferences(
            actor=Actor(user=creator.user), creator=creator, consent={"training": "deny"}
        )

    before = state_at(SubjectKind.USER, creator.platform_id, CHOICE_AT - timedelta(seconds=1))
    after = state_at(SubjectKind.USER, creator.platform_id, CHOICE_AT + timedelta(seconds=1))
    assert before["consent_training"] == "allow"
    assert after["consent_training"] == "deny"


def test_a_late_platform_signal_with_an_older_event_at_does_not_undo_the_creators_choice() -> None:
    creator = linked_creator()
    with freeze_time(CHOICE_AT):
        update_creator_preferences(
            actor=Actor(user=creator.user), creator=creator, consent={"training": "deny"}
        )

    # The platform's opt-in happened an hour before the creator's choice but arrives after it.
    platform_signal("ai_opt_in", creator, CHOICE_AT - timedelta(hours=1), purposes=["training"])

    creator.refresh_from_db()
    assert (creator.consent_training, creator.consent_training_at) == ("deny", CHOICE_AT)
    assert LedgerEntry.objects.filter(family="consent_training").count() == 2


def test_a_newer_platform_signal_overrides_an_older_creator_choice() -> None:
    creator = linked_creator()
    with freeze_time(CHOICE_AT):
        update_creator_preferences(
            actor=Actor(user=creator.user),
            creator=creator,
            consent={"training": "allow"},
            compensation_opt_in=True,
        )

    later = CHOICE_AT + timedelta(minutes=5)
    platform_signal("ai_opt_out", creator, later, purposes=["training"])
    platform_signal("compensation_opt_out", creator, later)

    creator.refresh_from_db()
    assert (creator.consent_training, creator.consent_training_at) == ("deny", later)
    assert (creator.compensation_opt_in, creator.compensation_opt_in_at) == (False, later)


def test_the_creators_choice_overrides_an_older_platform_signal_already_applied() -> None:
    creator = linked_creator()
    platform_signal("ai_opt_out", creator, CHOICE_AT - timedelta(days=1), purposes=["evaluation"])

    with freeze_time(CHOICE_AT):
        update_creator_preferences(
            actor=Actor(user=creator.user), creator=creator, consent={"evaluation": "allow"}
        )

    creator.refresh_from_db()
    assert (creator.consent_evaluation, creator.consent_evaluation_at) == ("allow", CHOICE_AT)


def test_a_future_dated_platform_signal_wins_and_the_choice_is_not_recorded() -> None:
    creator = linked_creator()
    platform_signal("ai_opt_out", creator, CHOICE_AT + timedelta(hours=1), purposes=["training"])

    with freeze_time(CHOICE_AT), pytest.raises(Conflict) as raised:
        update_creator_preferences(
            actor=Actor(user=creator.user),
            creator=creator,
            consent={"training": "allow", "analytics": "allow"},
        )

    assert raised.value.code == "newer_signal_wins"
    assert ledger_rows(creator) == [("ai_opt_out", "consent_training", "deny", "platform")]
    creator.refresh_from_db()
    assert (creator.consent_training, creator.consent_analytics) == ("deny", "")
    assert not AuditEvent.objects.filter(action="creator.preferences_changed").exists()


@pytest.mark.parametrize(
    ("consent", "field"),
    [({"training": ""}, "consent.training"), ({"telepathy": "allow"}, "consent.telepathy")],
)
def test_the_service_refuses_unset_and_unknown_purposes(
    consent: dict[str, str], field: str
) -> None:
    creator = linked_creator()
    with pytest.raises(InvalidInput) as raised:
        update_creator_preferences(actor=Actor(user=creator.user), creator=creator, consent=consent)
    assert list(raised.value.fields or {}) == [field]
    assert not LedgerEntry.objects.exists()


def test_nobody_but_the_linked_person_may_change_a_creators_choices(vendor: Any) -> None:
    creator = linked_creator()
    other = linked_creator()
    for actor in (Actor(user=other.user), Actor(api_key=vendor.api_key), Actor(user=UserFactory())):
        with pytest.raises(NotAllowed):
            update_creator_preferences(actor=actor, creator=creator, consent={"training": "deny"})
    creator.refresh_from_db()
    assert creator.consent_training == ""
    assert not LedgerEntry.objects.exists()


def test_history_lists_this_creators_entries_newest_first() -> None:
    creator = linked_creator()
    someone_else = linked_creator()
    platform_signal("user_protect", creator, CHOICE_AT - timedelta(days=2))
    platform_signal("ai_opt_in", creator, CHOICE_AT - timedelta(days=1), purposes=["training"])
    platform_signal("ai_opt_out", someone_else, CHOICE_AT, purposes=["training"])
    with freeze_time(CHOICE_AT):
        update_creator_preferences(
            actor=Actor(user=creator.user), creator=creator, consent={"training": "deny"}
        )

    history = creator_history(creator=creator)

    assert [(h.kind, h.family, h.value, h.event_at, h.source) for h in history] == [
        ("ai_opt_out", "consent_training", "deny", CHOICE_AT, "creator"),
        ("ai_opt_in", "consent_training", "allow", CHOICE_AT - timedelta(days=1), "platform"),
        ("user_protect", "user_protect", "on", CHOICE_AT - timedelta(days=2), "platform"),
    ]


# --- the API -----------------------------------------------------------------------------------


def test_get_shows_my_choices_with_explanations_and_history() -> None:
    creator = linked_creator(handle="ada", name="Ada L")
    with freeze_time(CHOICE_AT):
        update_creator_preferences(
            actor=Actor(user=creator.user), creator=creator, consent={"fine_tuning": "deny"}
        )

    response = client_for_user(creator.user).get("/api/v1/creator/")

    assert response.status_code == 200
    body = response.json()
    assert (body["platform_id"], body["handle"], body["name"]) == (
        str(creator.platform_id),
        "ada",
        "Ada L",
    )
    assert body["consent"] == {
        "training": "unset",
        "fine_tuning": "deny",
        "evaluation": "unset",
        "analytics": "unset",
    }
    assert [p["purpose"] for p in body["purposes"]] == [
        "training",
        "fine_tuning",
        "evaluation",
        "analytics",
    ]
    fine_tuning = body["purposes"][1]
    assert fine_tuning["choice"] == "deny"
    assert fine_tuning["label"] == "Fine-tuning"
    assert "adapt an existing AI model" in fine_tuning["explanation"]
    assert fine_tuning["decided_at"] == "2026-03-01T12:00:00Z"
    assert set(body["choice_explanations"]) == {"allow", "deny", "unset"}
    assert (body["compensation_opt_in"], body["compensation_decided_at"]) == (False, None)
    assert body["history"] == [
        {
            "kind": "ai_opt_out",
            "family": "consent_fine_tuning",
            "value": "deny",
            "event_at": "2026-03-01T12:00:00Z",
            "received_at": body["history"][0]["received_at"],
            "source": "creator",
        }
    ]


def test_get_runs_a_fixed_number_of_queries(django_assert_num_queries: Any) -> None:
    creator = linked_creator()
    platform_signal("ai_opt_in", creator, CHOICE_AT, purposes=["training", "analytics"])
    client = client_for_user(creator.user)
    with django_assert_num_queries(2):  # my creator, my history
        assert client.get("/api/v1/creator/").status_code == 200


def test_patch_changes_my_choices_and_returns_the_new_state() -> None:
    creator = linked_creator()
    client = client_for_user(creator.user)

    response = client.patch(
        "/api/v1/creator/",
        {"consent": {"training": "deny", "evaluation": "allow"}, "compensation_opt_in": True},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["consent"] == {
        "training": "deny",
        "fine_tuning": "unset",
        "evaluation": "allow",
        "analytics": "unset",
    }
    assert body["compensation_opt_in"] is True
    assert {(h["family"], h["value"], h["source"]) for h in body["history"]} == {
        ("consent_training", "deny", "creator"),
        ("consent_evaluation", "allow", "creator"),
        ("compensation", "on", "creator"),
    }
    creator.refresh_from_db()
    assert (creator.consent_training, creator.consent_evaluation) == ("deny", "allow")
    event = AuditEvent.objects.get(action="creator.preferences_changed")
    assert event.actor_user == creator.user


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"consent": {"training": "unset"}}, "consent.training"),
        ({"consent": {"training": ""}}, "consent.training"),
        ({"consent": {"analytics": "maybe"}}, "consent.analytics"),
        ({"consent": {"telepathy": "allow"}}, "consent.telepathy"),
        ({"consent": ["training"]}, "consent.non_field_errors"),
        ({"compensation_opt_in": "perhaps"}, "compensation_opt_in"),
    ],
)
def test_patch_validation_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    creator = linked_creator()

    response = client_for_user(creator.user).patch("/api/v1/creator/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["fields"]) == [field]
    assert not LedgerEntry.objects.exists()
    creator.refresh_from_db()
    assert (creator.consent_training, creator.compensation_opt_in) == ("", False)


def test_unset_is_refused_with_an_explanation() -> None:
    creator = linked_creator()
    response = client_for_user(creator.user).patch(
        "/api/v1/creator/", {"consent": {"training": "unset"}}, format="json"
    )
    assert response.json()["fields"]["consent.training"] == [
        "Choose allow or deny; a choice cannot be unset once made (deny withdraws it)."
    ]


@pytest.mark.parametrize("method", ["get", "patch"])
def test_who_may_call_the_creator_routes(method: str, vendor: Any) -> None:
    creator = linked_creator()
    body = {"consent": {"training": "deny"}}
    callers = {
        "anonymous": (APIClient(), 401, "not_authenticated"),
        "api key": (vendor.key_client, 403, "session_required"),
        "person without creator": (client_for_user(vendor.admin), 404, "no_creator_profile"),
    }
    for name, (client, status_code, code) in callers.items():
        response = getattr(client, method)("/api/v1/creator/", body, format="json")
        assert (response.status_code, response.json()["code"]) == (status_code, code), name
    creator.refresh_from_db()
    assert creator.consent_training == ""
    assert not LedgerEntry.objects.exists()


def test_creators_only_ever_see_and_change_themselves() -> None:
    ada = linked_creator(handle="ada")
    bob = linked_creator(handle="bob")
    platform_signal("ai_opt_out", bob, CHOICE_AT, purposes=["analytics"])
    ada_client = client_for_user(ada.user)

    seen = ada_client.get("/api/v1/creator/").json()
    changed = ada_client.patch(
        "/api/v1/creator/",
        # Naming another account in the body changes nothing: the creator comes from the session.
        {"platform_id": str(bob.platform_id), "consent": {"training": "deny"}},
        format="json",
    )

    assert seen["handle"] == "ada"
    assert seen["consent"]["analytics"] == "unset"
    assert [h for h in seen["history"] if h["family"] == "consent_analytics"] == []
    assert changed.status_code == 200
    assert changed.json()["handle"] == "ada"
    bob.refresh_from_db()
    assert (bob.consent_training, bob.consent_analytics) == ("", "deny")
    assert client_for_user(bob.user).get("/api/v1/creator/").json()["consent"]["training"] == (
        "unset"
    )
