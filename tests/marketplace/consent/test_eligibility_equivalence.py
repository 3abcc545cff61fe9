"""The two faces of the eligibility rules agree: for generated corpora (posts, authors, state set
directly on import, and ledger signal histories recorded in random batches, some before the
subject was imported), scopes, datasets, purposes, countries and `as_of` instants before, at,
between and after the events, the database query returns exactly the posts the pure predicate
accepts, where the predicate sees state computed independently by folding the generated signals.
The emitted records carry referenced content exactly when the referenced post is eligible.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, event, given, settings, target
from hypothesis import strategies as st

from marketplace.consent.eligibility import (
    AuthorState,
    PostState,
    dataset_scope,
    eligible_posts,
    eligible_records,
    is_eligible,
)
from marketplace.consent.ledger import ON, Signal, fold, rebuild_state, record_and_apply
from marketplace.consent.scope import Scope
from marketplace.models import ConsentBasis, ConsentPurpose, PostKind, SubjectKind
from tests.factories_corpus import T0, CreatorFactory, DatasetFactory, PostFactory
from tests.marketplace.consent.messages import message, signals_of

pytestmark = pytest.mark.django_db

INSTANTS = [T0 + timedelta(hours=hour) for hour in range(7)]
# as_of before, exactly at and between the event instants, and after all of them.
AS_OF_CHOICES = [T0 + timedelta(minutes=30 * step) for step in range(-1, 15)]
COUNTRIES = ["GB", "DE", "XX", "XY"]
LANGUAGES = ["en", "de", "ja"]
HASHTAGS = ["ai", "data_sci", "datasci", "rust"]
# ASCII words with LIKE wildcards in them, in mixed case (SQLite folds only ASCII case).
WORDS = ["Hello", "world", "100%", "snake_case", "AI", "rust", "ok"]
KEYWORDS = ["hello", "WORLD", "100%", "_", "e_c", "ai", "zzz"]
USER_SIGNAL_KINDS = [
    "user_delete",
    "user_undelete",
    "user_protect",
    "user_unprotect",
    "user_suspend",
    "user_unsuspend",
    "user_withheld",
    "ai_opt_out",
    "ai_opt_in",
    "compensation_opt_in",
    "compensation_opt_out",
]
POST_SIGNAL_KINDS = ["delete", "drop", "undrop", "withheld", "scrub_geo", "tweet_edit"]
MISSING_POST_ID = 777_777


@dataclass
class GeneratedCreator:
    platform_id: int
    direct: dict[str, Any]  # state columns set on import, with no `_at`
    messages: list[dict] = field(default_factory=list)


@dataclass
class GeneratedPost:
    platform_id: int
    author_index: int
    fields: dict[str, Any]
    direct: dict[str, Any]
    messages: list[dict] = field(default_factory=list)


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    return draw(st.sampled_from(INSTANTS))


@st.composite
def creators(draw: st.DrawFn, platform_id: int) -> GeneratedCreator:
    direct: dict[str, Any] = {}
    if draw(st.integers(0, 2)) > 0:
        # Most real authors have said yes or nothing; opt-in datasets need the yes.
        direct.update({f"consent_{purpose}": "allow" for purpose in ConsentPurpose.values})
    if draw(st.integers(0, 3)) == 0:
        direct |= draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "is_protected": st.booleans(),
                    "is_suspended": st.booleans(),
                    "is_deleted": st.booleans(),
                    "withheld_countries": st.sampled_from(["", ",GB,", ",DE,XX,"]),
                    "consent_training": st.sampled_from(["", "allow", "deny"]),
                    "consent_analytics": st.sampled_from(["", "allow", "deny"]),
                },
            )
        )
    messages = []
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 4]))):
        kind = draw(st.sampled_from(USER_SIGNAL_KINDS))
        messages.append(
            message(
                kind,
                platform_id,
                draw(instants()),
                countries=draw(st.lists(st.sampled_from(COUNTRIES), max_size=2)),
                purposes=draw(
                    st.none()
                    | st.lists(st.sampled_from(ConsentPurpose.values), min_size=1, max_size=2)
                ),
            )
        )
    return GeneratedCreator(platform_id, direct, messages)


@st.composite
def posts(draw: st.DrawFn, platform_id: int, creator_count: int) -> GeneratedPost:
    # Mostly originals, as on the platform; every kind still comes up often.
    kind = draw(st.sampled_from([PostKind.ORIGINAL] * 3 + list(PostKind.values)))
    words = draw(st.lists(st.sampled_from(WORDS), max_size=4))
    tags = sorted(draw(st.sets(st.sampled_from(HASHTAGS))))
    fields = {
        "created_at": draw(instants()),
        "lang": draw(st.sampled_from(LANGUAGES)),
        "hashtags": f"|{'|'.join(tags)}|" if tags else "",
        "text": " ".join(words),
        "kind": kind,
        "possibly_sensitive": draw(st.integers(0, 5)) == 0,
    }
    direct: dict[str, Any] = {}
    if draw(st.integers(0, 4)) == 0:
        direct = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "is_deleted": st.booleans(),
                    "is_dropped": st.booleans(),
                    "withheld_countries": st.sampled_from(["", ",GB,", ",XX,"]),
                },
            )
        )
    messages = []
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        messages.append(
            message(
                draw(st.sampled_from(POST_SIGNAL_KINDS)),
                platform_id,
                draw(instants()),
                countries=draw(st.lists(st.sampled_from(COUNTRIES), max_size=2)),
            )
        )
    return GeneratedPost(
        platform_id, draw(st.integers(0, creator_count - 1)), fields, direct, messages
    )


@st.composite
def scope_dicts(draw: st.DrawFn, *, for_dataset: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if draw(st.integers(0, 2)) == 0:
        start = draw(st.integers(-1, 6))
        end = draw(st.integers(start + 1, 8))
        if draw(st.booleans()):
            data["date_from"] = (T0 + timedelta(hours=start)).isoformat()
        if draw(st.booleans()):
            data["date_to"] = (T0 + timedelta(hours=end)).isoformat()
    optional_lists = {
        "languages": LANGUAGES,
        "hashtags_any": HASHTAGS,
        "hashtags_all": HASHTAGS,
        "hashtags_none": HASHTAGS,
        "keywords": KEYWORDS,
        "kinds": PostKind.values,
    }
    chance = 10 if for_dataset else 6
    for name, choices in optional_lists.items():
        if draw(st.integers(0, chance)) == 0:
            data[name] = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=2))
    if draw(st.booleans()):
        data["exclude_sensitive"] = draw(st.booleans())
    return data


@dataclass
class World:
    creators: list[GeneratedCreator]
    posts: list[GeneratedPost]
    references: dict[int, int]  # post index -> referenced platform id


@st.composite
def worlds(draw: st.DrawFn) -> World:
    creator_count = draw(st.integers(1, 4))
    generated_creators = [draw(creators(100 + index)) for index in range(creator_count)]
    post_count = draw(st.integers(3, 12))
    generated_posts = [draw(posts(1000 + index, creator_count)) for index in range(post_count)]
    references = {}
    for index, post in enumerate(generated_posts):
        if post.fields["kind"] != PostKind.ORIGINAL:
            references[index] = draw(
                st.sampled_from([p.platform_id for p in generated_posts] + [MISSING_POST_ID])
            )
    return World(generated_creators, generated_posts, references)


def _state(
    folded: dict[tuple[str, int, str], Signal],
    subject_kind: str,
    subject_id: int,
    family: str,
    *,
    had_signals: set[tuple[str, int, str]],
    direct: Any,
    default: Any,
) -> Any:
    """The oracle: the fold up to as_of when the family has a signal by then; the default when
    its signals all come later; the value set on import when it never had a signal."""
    winner = folded.get((subject_kind, subject_id, family))
    if winner is not None:
        return winner.value
    if (subject_kind, subject_id, family) in had_signals:
        return default
    return direct


def oracle_states(
    world: World, signals: list[Signal], as_of: datetime
) -> dict[int, tuple[PostState, AuthorState]]:
    folded = fold(signals, as_of=as_of)
    had = {(s.subject_kind, s.subject_platform_id, s.family) for s in signals}

    def flag(kind: str, sid: int, family: str, direct: bool) -> bool:
        return (
            _state(
                folded,
                kind,
                sid,
                family,
                had_signals=had,
                direct="on" if direct else "off",
                default="off",
            )
            == ON
        )

    def text(kind: str, sid: int, family: str, direct: str) -> str:
        return _state(folded, kind, sid, family, had_signals=had, direct=direct, default="")

    authors = []
    for creator in world.creators:
        user, sid, d = SubjectKind.USER, creator.platform_id, creator.direct
        authors.append(
            AuthorState(
                is_deleted=flag(user, sid, "user_delete", d.get("is_deleted", False)),
                is_suspended=flag(user, sid, "user_suspend", d.get("is_suspended", False)),
                is_protected=flag(user, sid, "user_protect", d.get("is_protected", False)),
                withheld_countries=text(
                    user, sid, "user_withheld", d.get("withheld_countries", "")
                ),
                consent={
                    purpose: text(user, sid, f"consent_{purpose}", d.get(f"consent_{purpose}", ""))
                    for purpose in ConsentPurpose.values
                },
            )
        )
    states = {}
    for post in world.posts:
        kind, sid, d = SubjectKind.POST, post.platform_id, post.direct
        states[sid] = (
            PostState(
                created_at=post.fields["created_at"],
                kind=post.fields["kind"],
                lang=post.fields["lang"],
                hashtags=tuple(tag for tag in post.fields["hashtags"].split("|") if tag),
                text=post.fields["text"],
                possibly_sensitive=post.fields["possibly_sensitive"],
                is_deleted=flag(kind, sid, "post_delete", d.get("is_deleted", False)),
                is_dropped=flag(kind, sid, "post_drop", d.get("is_dropped", False)),
                withheld_countries=text(
                    kind, sid, "post_withheld", d.get("withheld_countries", "")
                ),
            ),
            authors[post.author_index],
        )
    return states


def _load(world: World, signals: list[Signal], rng: random.Random) -> None:
    """Import the world as production would: some signals before the subjects exist (then
    rebuilt on import), the rest after, in random order and batches, with duplicates."""
    arrival = signals + rng.sample(signals, k=len(signals) // 3)
    rng.shuffle(arrival)
    cut = rng.randint(0, len(arrival))
    early, late = arrival[:cut], arrival[cut:]
    record_and_apply(early)
    authors = [
        CreatorFactory(platform_id=creator.platform_id, **creator.direct)
        for creator in world.creators
    ]
    for index, post in enumerate(world.posts):
        PostFactory(
            platform_id=post.platform_id,
            author=authors[post.author_index],
            referenced_platform_id=world.references.get(index),
            **post.fields,
            **post.direct,
        )
    rebuild_state(SubjectKind.USER, [creator.platform_id for creator in world.creators])
    rebuild_state(SubjectKind.POST, [post.platform_id for post in world.posts])
    while late:
        size = rng.randint(1, len(late))
        record_and_apply(late[:size])
        late = late[size:]


@dataclass(frozen=True)
class Query:
    dataset_index: int
    scope_data: dict[str, Any]
    purposes: tuple[str, ...]
    country: str | None
    as_of: datetime


queries = st.builds(
    Query,
    dataset_index=st.integers(0, 1),
    scope_data=scope_dicts(for_dataset=False),
    purposes=st.lists(
        st.sampled_from(ConsentPurpose.values), min_size=1, max_size=3, unique=True
    ).map(tuple),
    country=st.sampled_from(["GB", "DE", "FR", None]),
    # Before, at and between the event instants, and after all of them (the usual extract).
    as_of=st.sampled_from(AS_OF_CHOICES) | st.just(AS_OF_CHOICES[-1]),
)


@given(
    world=worlds(),
    base_scopes=st.tuples(scope_dicts(for_dataset=True), scope_dicts(for_dataset=True)),
    query_list=st.lists(queries, min_size=3, max_size=8),
    seed=st.integers(0, 2**16),
)
@settings(
    max_examples=100,
    deadline=None,
    database=None,
    # The explain phase re-runs a failure hundreds of times against the database; the shrunk
    # example is explanation enough.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_query_and_the_predicate_agree(
    world: World,
    base_scopes: tuple[dict[str, Any], dict[str, Any]],
    query_list: list[Query],
    seed: int,
) -> None:
    signals = signals_of(
        [raw for subject in [*world.creators, *world.posts] for raw in subject.messages]
    )
    most_eligible = 0
    with transaction.atomic():
        # One world, loaded once, is asked many questions: an opt-in and an opt-out dataset.
        datasets = [
            DatasetFactory(consent_basis=basis, base_scope=_valid_scope(data).to_dict())
            for basis, data in zip(
                (ConsentBasis.OPT_IN, ConsentBasis.OPT_OUT), base_scopes, strict=True
            )
        ]
        _load(world, signals, random.Random(seed))
        for number, query in enumerate(query_list):
            dataset = datasets[query.dataset_index]
            scope = _valid_scope(query.scope_data)
            arguments = {
                "dataset": dataset,
                "scope": scope,
                "purposes": query.purposes,
                "as_of": query.as_of,
                "licensee_country": query.country,
            }
            from_database = set(
                eligible_posts(**arguments).values_list("platform_id", flat=True)  # type: ignore[arg-type]
            )
            states = oracle_states(world, signals, query.as_of)
            from_predicate = {
                platform_id
                for platform_id, (post_state, author_state) in states.items()
                if is_eligible(
                    post_state,
                    author_state,
                    consent_basis=dataset.consent_basis,
                    scope=scope,
                    purposes=query.purposes,
                    licensee_country=query.country,
                    as_of=query.as_of,
                    base_scope=dataset_scope(dataset),
                )
            }
            assert from_database == from_predicate, query
            most_eligible = max(most_eligible, len(from_predicate))
            if number < 2:  # records cost more; two queries per world check rule 5
                _check_records(world, arguments, from_predicate)
        transaction.set_rollback(True)
    # Steer generation toward corpora where much is eligible (an empty answer proves little).
    target(float(most_eligible), label="eligible posts")
    event(f"most eligible at one query: {'4+' if most_eligible >= 4 else most_eligible}")


def _check_records(world: World, arguments: dict[str, Any], eligible: set[int]) -> None:
    records = list(eligible_records(**arguments, chunk_size=3))
    assert [record["post_id"] for record in records] == sorted(eligible)
    for record in records:
        referenced_target = _referenced_target(world, record["post_id"])
        expected = referenced_target if referenced_target in eligible else None
        assert record["referenced_post_id"] == expected
        assert (record["referenced_text"] is None) == (expected is None)


def _referenced_target(world: World, platform_id: int) -> int | None:
    for index, post in enumerate(world.posts):
        if post.platform_id == platform_id:
            return world.references.get(index)
    raise AssertionError(platform_id)


def _valid_scope(data: dict[str, Any]) -> Scope:
    """Scope.from_dict, dropping a date range that ended up empty."""
    if data.get("date_from") and data.get("date_to") and data["date_from"] >= data["date_to"]:
        data = {key: value for key, value in data.items() if key != "date_to"}
    return Scope.from_dict(data)


def _assert_faces_agree(
    world: World,
    signals: list[Signal],
    dataset: Any,
    scope: Scope,
    purposes: tuple[str, ...],
    country: str | None,
    as_of: datetime,
) -> int:
    from_database = set(
        eligible_posts(
            dataset=dataset,
            scope=scope,
            purposes=purposes,
            as_of=as_of,
            licensee_country=country,
        ).values_list("platform_id", flat=True)
    )
    from_predicate = {
        platform_id
        for platform_id, (post_state, author_state) in oracle_states(world, signals, as_of).items()
        if is_eligible(
            post_state,
            author_state,
            consent_basis=dataset.consent_basis,
            scope=scope,
            purposes=purposes,
            licensee_country=country,
            as_of=as_of,
            base_scope=dataset_scope(dataset),
        )
    }
    assert from_database == from_predicate, (as_of, country, purposes, scope)
    return len(from_predicate)


# Few instants for histories, so that ties (same event_at, different value) are common.
FEW_INSTANTS = st.sampled_from(INSTANTS[1:6:2])


@st.composite
def histories(draw: st.DrawFn) -> World:
    """Plain, in-scope posts whose eligibility is decided by long signal histories alone."""
    creator_count = draw(st.integers(1, 3))
    generated_creators = []
    for index in range(creator_count):
        platform_id = 100 + index
        messages = [
            message(
                draw(st.sampled_from(USER_SIGNAL_KINDS)),
                platform_id,
                draw(FEW_INSTANTS),
                countries=draw(st.lists(st.sampled_from(COUNTRIES), max_size=2)),
                purposes=draw(
                    st.none()
                    | st.lists(st.sampled_from(ConsentPurpose.values), min_size=1, max_size=2)
                ),
            )
            for _ in range(draw(st.integers(0, 8)))
        ]
        direct = draw(st.sampled_from([{}, {"is_protected": True}, {"consent_training": "allow"}]))
        generated_creators.append(GeneratedCreator(platform_id, direct, messages))
    generated_posts = []
    for index in range(draw(st.integers(1, 5))):
        platform_id = 1000 + index
        messages = [
            message(
                draw(st.sampled_from(POST_SIGNAL_KINDS)),
                platform_id,
                draw(FEW_INSTANTS),
                countries=draw(st.lists(st.sampled_from(COUNTRIES), max_size=2)),
            )
            for _ in range(draw(st.integers(0, 6)))
        ]
        fields = {
            "created_at": T0,
            "lang": "en",
            "hashtags": "",
            "text": "plain",
            "kind": PostKind.ORIGINAL,
            "possibly_sensitive": False,
        }
        direct = draw(
            st.sampled_from([{}, {}, {"is_dropped": True}, {"withheld_countries": ",DE,"}])
        )
        generated_posts.append(
            GeneratedPost(
                platform_id, draw(st.integers(0, creator_count - 1)), fields, direct, messages
            )
        )
    return World(generated_creators, generated_posts, {})


@given(world=histories(), seed=st.integers(0, 2**16))
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_signal_histories_agree_at_every_as_of(world: World, seed: int) -> None:
    """as_of before, at, between and after the events, every kind of licensee country, both
    consent bases: the ledger fallback (column newer than as_of) is exercised heavily."""
    signals = signals_of(
        [raw for subject in [*world.creators, *world.posts] for raw in subject.messages]
    )
    with transaction.atomic():
        datasets = [
            DatasetFactory(consent_basis=ConsentBasis.OPT_OUT),
            DatasetFactory(consent_basis=ConsentBasis.OPT_IN),
        ]
        _load(world, signals, random.Random(seed))
        rng = random.Random(seed)
        for as_of in rng.sample(AS_OF_CHOICES, 8):
            country = rng.choice(["GB", "DE", None])
            dataset = datasets[rng.randint(0, 1)]
            purposes = tuple(rng.sample(ConsentPurpose.values, rng.randint(1, 2)))
            _assert_faces_agree(world, signals, dataset, Scope(), purposes, country, as_of)
        transaction.set_rollback(True)


@given(
    world=worlds(),
    scopes=st.lists(
        st.tuples(scope_dicts(for_dataset=True), scope_dicts(for_dataset=False)),
        min_size=5,
        max_size=15,
    ),
)
@settings(
    max_examples=50,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_scopes_agree_on_a_corpus_without_restrictions(
    world: World, scopes: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    """Rule 4 alone: every post and author is clean, so only the dataset's base scope and the
    requested scope decide."""
    for post in world.posts:
        post.messages.clear()
        post.direct.clear()
    for creator in world.creators:
        creator.messages.clear()
        creator.direct.clear()
    with transaction.atomic():
        _load(world, [], random.Random(0))
        most_eligible = 0
        for base_data, scope_data in scopes:
            dataset = DatasetFactory(
                consent_basis=ConsentBasis.OPT_OUT, base_scope=_valid_scope(base_data).to_dict()
            )
            eligible = _assert_faces_agree(
                world, [], dataset, _valid_scope(scope_data), ("training",), "GB", AS_OF_CHOICES[-1]
            )
            most_eligible = max(most_eligible, eligible)
        transaction.set_rollback(True)
    target(float(most_eligible), label="eligible posts")
