"""Every eligibility rule and every compliance/consent event type, checked on both faces.

Each test builds state the way production does: real-format messages through `parse_message`
and `record_and_apply`. `eligible_ids` asks the database face; `predicate_ids` asks the pure face
with states read back from the ledger (`state_at`), so every test here also checks that the two
faces agree on its case.
"""

from datetime import datetime, timedelta

import pytest

from marketplace.consent.eligibility import (
    ALL_PURPOSES,
    RULES_VERSION,
    AuthorState,
    PostState,
    dataset_scope,
    eligible_posts,
    eligible_records,
    is_eligible,
)
from marketplace.consent.ledger import FAMILIES, ON, state_at
from marketplace.consent.scope import Scope
from marketplace.errors import InvalidInput
from marketplace.models import ConsentBasis, Creator, Dataset, LedgerEntry, Post, PostKind
from tests.factories_corpus import T0, CreatorFactory, DatasetFactory, PostFactory
from tests.marketplace.consent.messages import message, send

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=30)


def hours(count: float) -> datetime:
    return T0 + timedelta(hours=count)


def _family_state(subject_kind: str, row: Creator | Post, family: str, as_of: datetime) -> str:
    """The state the pure face should see: the ledger fold at as_of when the family has signals,
    else the materialized column (set directly, e.g. by an import)."""
    folded = state_at(subject_kind, row.platform_id, as_of)
    if family in folded:
        return folded[family]
    has_signals = LedgerEntry.objects.filter(
        subject_kind=subject_kind, subject_platform_id=row.platform_id, family=family
    ).exists()
    column = getattr(row, FAMILIES[family].column)
    if has_signals:
        return "" if isinstance(column, str) else "off"
    return ("on" if column else "off") if isinstance(column, bool) else column


def states_at(post: Post, as_of: datetime) -> tuple[PostState, AuthorState]:
    post.refresh_from_db()
    author = post.author
    author.refresh_from_db()
    post_state = PostState(
        created_at=post.created_at,
        kind=post.kind,
        lang=post.lang,
        hashtags=tuple(post.hashtag_list),
        text=post.text,
        possibly_sensitive=post.possibly_sensitive,
        is_deleted=_family_state("post", post, "post_delete", as_of) == ON,
        is_dropped=_family_state("post", post, "post_drop", as_of) == ON,
        withheld_countries=_family_state("post", post, "post_withheld", as_of),
    )
    author_state = AuthorState(
        is_deleted=_family_state("user", author, "user_delete", as_of) == ON,
        is_suspended=_family_state("user", author, "user_suspend", as_of) == ON,
        is_protected=_family_state("user", author, "user_protect", as_of) == ON,
        withheld_countries=_family_state("user", author, "user_withheld", as_of),
        consent={
            purpose: _family_state("user", author, f"consent_{purpose}", as_of)
            for purpose in ALL_PURPOSES
        },
    )
    return post_state, author_state


def eligible_ids(
    dataset: Dataset,
    *,
    scope: Scope | None = None,
    purposes: tuple[str, ...] = ("training",),
    as_of: datetime = NOW,
    country: str | None = "GB",
) -> set[int]:
    """Both faces at once: returns the database's answer after asserting the predicate's
    answer over every post is the same."""
    scope = scope or Scope()
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
        post.platform_id
        for post in Post.objects.all()
        if is_eligible(
            *states_at(post, as_of),
            consent_basis=dataset.consent_basis,
            scope=scope,
            purposes=purposes,
            licensee_country=country,
            as_of=as_of,
            base_scope=dataset_scope(dataset),
        )
    }
    assert from_database == from_predicate
    return from_database


@pytest.fixture
def dataset() -> Dataset:
    return DatasetFactory(consent_basis=ConsentBasis.OPT_OUT)


@pytest.fixture
def opt_in_dataset() -> Dataset:
    return DatasetFactory(consent_basis=ConsentBasis.OPT_IN)


def test_rules_version_is_recorded_as_a_constant() -> None:
    assert isinstance(RULES_VERSION, str) and RULES_VERSION


# --- Rule 1: the post itself -------------------------------------------------------------------


def test_a_public_post_of_a_public_author_is_eligible(dataset: Dataset) -> None:
    post = PostFactory()
    assert eligible_ids(dataset) == {post.platform_id}


def test_a_post_created_after_as_of_does_not_exist_yet(dataset: Dataset) -> None:
    post = PostFactory(created_at=hours(10))
    assert eligible_ids(dataset, as_of=hours(9)) == set()
    assert eligible_ids(dataset, as_of=hours(10)) == {post.platform_id}


def test_delete_hides_the_post_from_its_event_on(dataset: Dataset) -> None:
    post = PostFactory()
    kept = PostFactory(author=post.author)
    send(message("delete", post.platform_id, hours(5), author_id=post.author.platform_id))
    assert eligible_ids(dataset, as_of=hours(4)) == {post.platform_id, kept.platform_id}
    assert eligible_ids(dataset, as_of=hours(5)) == {kept.platform_id}
    assert eligible_ids(dataset) == {kept.platform_id}


def test_tweet_edit_keeps_the_post_eligible_and_delivers_only_the_latest_text(
    dataset: Dataset,
) -> None:
    post = PostFactory(text="latest text after the edit")
    send(message("tweet_edit", post.platform_id, hours(2), edit_id=post.platform_id + 77))
    assert eligible_ids(dataset) == {post.platform_id}
    assert eligible_ids(dataset, as_of=hours(1)) == {post.platform_id}
    (record,) = eligible_records(
        dataset=dataset, scope=Scope(), purposes=["training"], as_of=NOW, licensee_country="GB"
    )
    assert record["text"] == "latest text after the edit"


@pytest.mark.parametrize(
    ("countries", "licensee_country", "expected_eligible"),
    [
        (["DE"], "GB", True),
        (["DE"], "DE", False),
        (["de", "GB"], "gb", False),
        (["XX"], "GB", False),  # withheld everywhere
        (["XY"], "FR", False),  # withheld on a copyright claim
        (["DE"], None, False),  # unknown licensee country: any withholding blocks
        ([], None, True),  # withholding lifted
    ],
)
def test_withheld_hides_the_post_in_the_listed_countries(
    dataset: Dataset,
    countries: list[str],
    licensee_country: str | None,
    expected_eligible: bool,
) -> None:
    post = PostFactory()
    send(message("withheld", post.platform_id, hours(1), countries=countries))
    expected = {post.platform_id} if expected_eligible else set()
    assert eligible_ids(dataset, country=licensee_country) == expected
    assert eligible_ids(dataset, country=licensee_country, as_of=hours(0.5)) == {post.platform_id}


def test_a_newer_withheld_list_replaces_the_older_one(dataset: Dataset) -> None:
    post = PostFactory()
    send(
        message("withheld", post.platform_id, hours(3), countries=["FR"]),
        message("withheld", post.platform_id, hours(1), countries=["GB"]),
    )
    assert eligible_ids(dataset, country="GB", as_of=hours(2)) == set()
    assert eligible_ids(dataset, country="GB") == {post.platform_id}
    assert eligible_ids(dataset, country="FR") == set()


def test_drop_hides_the_post_and_undrop_restores_it(dataset: Dataset) -> None:
    post = PostFactory()
    send(message("drop", post.platform_id, hours(1)))
    assert eligible_ids(dataset) == set()
    send(message("undrop", post.platform_id, hours(2)))
    assert eligible_ids(dataset) == {post.platform_id}
    assert eligible_ids(dataset, as_of=hours(1.5)) == set()


def test_drop_and_undrop_at_the_same_instant_leave_the_post_dropped(dataset: Dataset) -> None:
    post = PostFactory()
    send(message("undrop", post.platform_id, hours(1)), message("drop", post.platform_id, hours(1)))
    assert eligible_ids(dataset) == set()


def test_scrub_geo_keeps_the_post_but_never_delivers_its_geo(dataset: Dataset) -> None:
    post = PostFactory(geo={"place_id": "01a9a39529b27f36"})
    other = PostFactory(geo={"place_id": "kept"})
    send(message("scrub_geo", post.platform_id, hours(1)))
    assert eligible_ids(dataset) == {post.platform_id, other.platform_id}
    records = {
        record["post_id"]: record
        for record in eligible_records(
            dataset=dataset, scope=Scope(), purposes=["training"], as_of=NOW, licensee_country="GB"
        )
    }
    assert records[post.platform_id]["geo"] is None
    assert records[other.platform_id]["geo"] == {"place_id": "kept"}


# --- Rule 2: the author ------------------------------------------------------------------------


def test_user_delete_hides_every_post_at_once_including_the_undelete_window(
    dataset: Dataset,
) -> None:
    author = CreatorFactory()
    posts = {PostFactory(author=author).platform_id for _ in range(3)}
    send(
        message("user_delete", author.platform_id, hours(2)),
        message("user_undelete", author.platform_id, hours(8)),
    )
    assert eligible_ids(dataset, as_of=hours(1)) == posts
    assert eligible_ids(dataset, as_of=hours(2)) == set()
    assert eligible_ids(dataset, as_of=hours(7.9)) == set()  # the undelete window
    assert eligible_ids(dataset, as_of=hours(8)) == posts


def test_user_delete_hides_posts_whose_own_state_is_clean(dataset: Dataset) -> None:
    post = PostFactory()
    send(message("undrop", post.platform_id, hours(1)))
    send(message("user_delete", post.author.platform_id, hours(1)))
    assert eligible_ids(dataset) == set()


@pytest.mark.parametrize(
    ("on", "off"), [("user_protect", "user_unprotect"), ("user_suspend", "user_unsuspend")]
)
def test_protected_or_suspended_authors_are_hidden_until_lifted(
    dataset: Dataset, on: str, off: str
) -> None:
    post = PostFactory()
    send(message(on, post.author.platform_id, hours(1)))
    assert eligible_ids(dataset) == set()
    send(message(off, post.author.platform_id, hours(4)))
    assert eligible_ids(dataset) == {post.platform_id}
    assert eligible_ids(dataset, as_of=hours(0.5)) == {post.platform_id}
    assert eligible_ids(dataset, as_of=hours(2)) == set()


def test_protect_and_unprotect_at_the_same_instant_leave_the_author_protected(
    dataset: Dataset,
) -> None:
    post = PostFactory()
    send(
        message("user_unprotect", post.author.platform_id, hours(1)),
        message("user_protect", post.author.platform_id, hours(1)),
    )
    assert eligible_ids(dataset) == set()


def test_user_withheld_hides_the_author_in_those_countries(dataset: Dataset) -> None:
    post = PostFactory()
    send(message("user_withheld", post.author.platform_id, hours(1), countries=["GB", "DE"]))
    assert eligible_ids(dataset, country="GB") == set()
    assert eligible_ids(dataset, country="US") == {post.platform_id}
    assert eligible_ids(dataset, country=None) == set()
    send(message("user_withheld", post.author.platform_id, hours(2), countries=[]))
    assert eligible_ids(dataset, country="GB") == {post.platform_id}


def test_state_set_directly_on_import_counts_when_no_signal_exists(dataset: Dataset) -> None:
    protected = PostFactory(author=CreatorFactory(is_protected=True))
    PostFactory(is_deleted=True)
    PostFactory(author=CreatorFactory(withheld_countries=",GB,"))
    public = PostFactory()
    assert eligible_ids(dataset) == {public.platform_id}
    # A later unprotect signal decides from its event on; before it, the ledger has nothing
    # and the family default (public) applies.
    send(message("user_unprotect", protected.author.platform_id, hours(5)))
    assert eligible_ids(dataset) == {public.platform_id, protected.platform_id}


# --- Rule 3: consent ---------------------------------------------------------------------------


def test_unset_consent_follows_the_dataset_basis(dataset: Dataset, opt_in_dataset: Dataset) -> None:
    post = PostFactory()
    assert eligible_ids(dataset) == {post.platform_id}
    assert eligible_ids(opt_in_dataset) == set()


def test_ai_opt_in_makes_an_opt_in_dataset_include_the_author(opt_in_dataset: Dataset) -> None:
    post = PostFactory()
    send(message("ai_opt_in", post.author.platform_id, hours(1), purposes=["training"]))
    assert eligible_ids(opt_in_dataset, purposes=("training",)) == {post.platform_id}
    # Every purpose of the license must be allowed.
    assert eligible_ids(opt_in_dataset, purposes=("training", "evaluation")) == set()
    assert eligible_ids(opt_in_dataset, as_of=hours(0.5)) == set()


def test_ai_opt_in_without_purposes_allows_every_purpose(opt_in_dataset: Dataset) -> None:
    post = PostFactory()
    send(message("ai_opt_in", post.author.platform_id, hours(1)))
    assert eligible_ids(opt_in_dataset, purposes=ALL_PURPOSES) == {post.platform_id}


def test_ai_opt_out_of_one_license_purpose_hides_the_author_even_when_opt_out(
    dataset: Dataset, opt_in_dataset: Dataset
) -> None:
    post = PostFactory()
    send(message("ai_opt_in", post.author.platform_id, hours(1)))
    send(message("ai_opt_out", post.author.platform_id, hours(2), purposes=["fine_tuning"]))
    for target in (dataset, opt_in_dataset):
        assert eligible_ids(target, purposes=("training",)) == {post.platform_id}
        assert eligible_ids(target, purposes=("training", "fine_tuning")) == set()
        assert eligible_ids(target, purposes=("fine_tuning",), as_of=hours(1.5)) == {
            post.platform_id
        }


def test_deny_wins_over_allow_at_the_same_instant(dataset: Dataset) -> None:
    post = PostFactory()
    send(
        message("ai_opt_in", post.author.platform_id, hours(1), purposes=["analytics"]),
        message("ai_opt_out", post.author.platform_id, hours(1), purposes=["analytics"]),
    )
    assert eligible_ids(dataset, purposes=("analytics",)) == set()


def test_a_later_opt_in_overrides_an_earlier_opt_out(opt_in_dataset: Dataset) -> None:
    post = PostFactory()
    send(
        message("ai_opt_out", post.author.platform_id, hours(1), purposes=["evaluation"]),
        message("ai_opt_in", post.author.platform_id, hours(3), purposes=["evaluation"]),
    )
    assert eligible_ids(opt_in_dataset, purposes=("evaluation",), as_of=hours(2)) == set()
    assert eligible_ids(opt_in_dataset, purposes=("evaluation",)) == {post.platform_id}


@pytest.mark.parametrize("kind", ["compensation_opt_in", "compensation_opt_out"])
def test_compensation_choices_do_not_change_eligibility(dataset: Dataset, kind: str) -> None:
    post = PostFactory()
    send(message(kind, post.author.platform_id, hours(1)))
    post.author.refresh_from_db()
    assert post.author.compensation_opt_in is (kind == "compensation_opt_in")
    assert eligible_ids(dataset) == {post.platform_id}


@pytest.mark.parametrize("purposes", [(), ("mining",), ("training", "mining")])
def test_a_license_needs_known_purposes(dataset: Dataset, purposes: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInput):
        eligible_posts(
            dataset=dataset, scope=Scope(), purposes=purposes, as_of=NOW, licensee_country="GB"
        )
    with pytest.raises(InvalidInput):
        is_eligible(
            PostState(created_at=T0),
            AuthorState(),
            consent_basis=ConsentBasis.OPT_OUT,
            scope=Scope(),
            purposes=purposes,
            licensee_country="GB",
        )


# --- Rule 4: dataset and scope -----------------------------------------------------------------


def test_the_date_range_is_half_open(dataset: Dataset) -> None:
    first = PostFactory(created_at=hours(1))
    second = PostFactory(created_at=hours(2))
    PostFactory(created_at=hours(3))
    scope = Scope(date_from=hours(1), date_to=hours(3))
    assert eligible_ids(dataset, scope=scope) == {first.platform_id, second.platform_id}


def test_languages_select_posts_in_any_of_them(dataset: Dataset) -> None:
    english = PostFactory(lang="en")
    german = PostFactory(lang="de")
    PostFactory(lang="fr")
    scope = Scope.from_dict({"languages": ["EN", "de"]})
    assert eligible_ids(dataset, scope=scope) == {english.platform_id, german.platform_id}


def test_hashtags_any_all_and_none(dataset: Dataset) -> None:
    both = PostFactory(hashtags="|ai|data_sci|")
    only_ai = PostFactory(hashtags="|ai|")
    only_data = PostFactory(hashtags="|datasci|")  # "_" is a LIKE wildcard: must not match
    none = PostFactory(hashtags="")
    assert eligible_ids(dataset, scope=Scope.from_dict({"hashtags_any": ["#AI", "data_sci"]})) == {
        both.platform_id,
        only_ai.platform_id,
    }
    assert eligible_ids(dataset, scope=Scope.from_dict({"hashtags_all": ["ai", "data_sci"]})) == {
        both.platform_id
    }
    assert eligible_ids(dataset, scope=Scope.from_dict({"hashtags_none": ["ai"]})) == {
        only_data.platform_id,
        none.platform_id,
    }


def test_keywords_match_any_case_insensitive_substring(dataset: Dataset) -> None:
    climate = PostFactory(text="The CLIMATE is changing")
    percent = PostFactory(text="a 100% match")
    PostFactory(text="a 1000 match")  # "%" is a LIKE wildcard: must not match "100%"
    PostFactory(text="nothing relevant")
    scope = Scope.from_dict({"keywords": ["climate", "100%"]})
    assert eligible_ids(dataset, scope=scope) == {climate.platform_id, percent.platform_id}


def test_kinds_select_and_retweets_are_never_eligible(dataset: Dataset) -> None:
    original = PostFactory(kind=PostKind.ORIGINAL)
    reply = PostFactory(kind=PostKind.REPLY, referenced_platform_id=original.platform_id)
    PostFactory(kind=PostKind.RETWEET, referenced_platform_id=original.platform_id, text="")
    assert eligible_ids(dataset) == {original.platform_id, reply.platform_id}
    assert eligible_ids(dataset, scope=Scope.from_dict({"kinds": ["reply", "retweet"]})) == {
        reply.platform_id
    }
    # Even a hand-built scope that lists retweets never yields one.
    assert eligible_ids(dataset, scope=Scope(kinds=(PostKind.RETWEET,))) == set()


def test_sensitive_posts_are_excluded_unless_the_scope_allows_them(dataset: Dataset) -> None:
    sensitive = PostFactory(possibly_sensitive=True)
    plain = PostFactory()
    assert eligible_ids(dataset) == {plain.platform_id}
    scope = Scope(exclude_sensitive=False)
    permissive = DatasetFactory(base_scope={"exclude_sensitive": False})
    assert eligible_ids(permissive, scope=scope) == {plain.platform_id, sensitive.platform_id}
    # The dataset's base scope excludes them ({} parses to exclude_sensitive=True).
    assert eligible_ids(dataset, scope=scope) == {plain.platform_id}


def test_the_dataset_base_scope_bounds_every_request(dataset: Dataset) -> None:
    german_dataset = DatasetFactory(
        base_scope={"languages": ["de"], "date_to": "2024-01-02T00:00Z"}
    )
    german = PostFactory(lang="de")
    PostFactory(lang="de", created_at=hours(30))
    english = PostFactory(lang="en")
    assert eligible_ids(german_dataset) == {german.platform_id}
    assert eligible_ids(german_dataset, scope=Scope(languages=("en",))) == set()
    assert eligible_ids(dataset, scope=Scope(languages=("en",))) == {english.platform_id}


def test_a_malformed_dataset_base_scope_is_an_error_not_everything() -> None:
    broken = DatasetFactory(base_scope={"languages": "en"})
    with pytest.raises(InvalidInput):
        eligible_posts(
            dataset=broken, scope=Scope(), purposes=["training"], as_of=NOW, licensee_country="GB"
        )


# --- as_of -------------------------------------------------------------------------------------


def test_a_signal_after_as_of_does_not_affect_that_as_of(dataset: Dataset) -> None:
    post = PostFactory()
    send(message("user_protect", post.author.platform_id, hours(10)))
    assert eligible_ids(dataset, as_of=hours(9)) == {post.platform_id}
    assert eligible_ids(dataset, as_of=hours(10)) == set()


def test_a_late_arriving_signal_dated_before_as_of_does_affect_it(dataset: Dataset) -> None:
    post = PostFactory()
    as_of = hours(10)
    assert eligible_ids(dataset, as_of=as_of) == {post.platform_id}
    # Received now, but the event happened before as_of: the same as_of now excludes it.
    send(message("delete", post.platform_id, hours(3)))
    assert eligible_ids(dataset, as_of=as_of) == set()


def test_the_ledger_decides_when_the_column_is_newer_than_as_of(dataset: Dataset) -> None:
    post = PostFactory()
    author = post.author.platform_id
    send(
        message("user_suspend", author, hours(1)),
        message("user_unsuspend", author, hours(5)),
        message("withheld", post.platform_id, hours(2), countries=["GB"]),
        message("withheld", post.platform_id, hours(6), countries=[]),
    )
    post.author.refresh_from_db()
    assert post.author.is_suspended is False  # the column holds the newest state ...
    assert eligible_ids(dataset, as_of=hours(3)) == set()  # ... the ledger holds the past
    assert eligible_ids(dataset, as_of=hours(5.5), country="GB") == set()
    assert eligible_ids(dataset, as_of=hours(5.5), country="FR") == {post.platform_id}
    assert eligible_ids(dataset, as_of=hours(6)) == {post.platform_id}


# --- Rule 5: retweets, quotes and replies ------------------------------------------------------


def _records(dataset: Dataset, **overrides: object) -> dict[int, dict[str, object]]:
    arguments: dict[str, object] = {
        "dataset": dataset,
        "scope": Scope(),
        "purposes": ["training"],
        "as_of": NOW,
        "licensee_country": "GB",
    }
    arguments.update(overrides)
    return {record["post_id"]: record for record in eligible_records(**arguments)}  # type: ignore[arg-type]


def test_a_quote_of_an_eligible_post_carries_its_text_and_author(dataset: Dataset) -> None:
    quoted = PostFactory(text="the original words")
    quote = PostFactory(
        kind=PostKind.QUOTE, referenced_platform_id=quoted.platform_id, text="my take"
    )
    record = _records(dataset)[quote.platform_id]
    assert record["referenced_post_id"] == quoted.platform_id
    assert record["referenced_text"] == "the original words"
    assert record["referenced_author_id"] == quoted.author.platform_id
    assert record["referenced_author_handle"] == quoted.author.handle


@pytest.mark.parametrize(
    "make_ineligible",
    [
        pytest.param(lambda p: send(message("delete", p.platform_id, hours(1))), id="deleted"),
        pytest.param(lambda p: send(message("drop", p.platform_id, hours(1))), id="dropped"),
        pytest.param(
            lambda p: send(message("withheld", p.platform_id, hours(1), countries=["GB"])),
            id="withheld",
        ),
        pytest.param(
            lambda p: send(message("user_protect", p.author.platform_id, hours(1))),
            id="author-protected",
        ),
        pytest.param(
            lambda p: send(message("user_delete", p.author.platform_id, hours(1))),
            id="author-deleted",
        ),
        pytest.param(
            lambda p: send(message("user_suspend", p.author.platform_id, hours(1))),
            id="author-suspended",
        ),
        pytest.param(
            lambda p: send(message("ai_opt_out", p.author.platform_id, hours(1))),
            id="author-opted-out",
        ),
        pytest.param(
            lambda p: Post.objects.filter(pk=p.pk).update(possibly_sensitive=True),
            id="sensitive",
        ),
        pytest.param(
            lambda p: Post.objects.filter(pk=p.pk).update(kind=PostKind.RETWEET),
            id="retweet",
        ),
    ],
)
@pytest.mark.parametrize("kind", [PostKind.QUOTE, PostKind.REPLY])
def test_referenced_content_is_withheld_when_the_referenced_post_is_ineligible(
    dataset: Dataset, kind: str, make_ineligible: object
) -> None:
    referenced = PostFactory(text="secret words of someone else")
    post = PostFactory(kind=kind, referenced_platform_id=referenced.platform_id, text="answer")
    make_ineligible(referenced)  # type: ignore[operator]
    records = _records(dataset)
    assert set(records) == {post.platform_id}
    record = records[post.platform_id]
    assert record["referenced_post_id"] is None
    assert record["referenced_text"] is None
    assert record["referenced_author_id"] is None
    assert record["referenced_author_handle"] is None
    assert "secret" not in repr(records)


def test_referenced_content_follows_the_same_scope_and_as_of(dataset: Dataset) -> None:
    referenced = PostFactory(lang="de", created_at=hours(5), text="auf deutsch")
    reply = PostFactory(
        kind=PostKind.REPLY,
        lang="en",
        created_at=hours(6),
        referenced_platform_id=referenced.platform_id,
    )
    assert _records(dataset)[reply.platform_id]["referenced_text"] == "auf deutsch"
    english_only = _records(dataset, scope=Scope(languages=("en",)))
    assert english_only[reply.platform_id]["referenced_text"] is None
    send(message("delete", referenced.platform_id, hours(20)))
    assert _records(dataset, as_of=hours(10))[reply.platform_id]["referenced_text"] == "auf deutsch"
    assert _records(dataset)[reply.platform_id]["referenced_text"] is None


def test_a_reference_to_a_post_outside_the_corpus_carries_nothing(dataset: Dataset) -> None:
    reply = PostFactory(kind=PostKind.REPLY, referenced_platform_id=123456789)
    assert _records(dataset)[reply.platform_id]["referenced_post_id"] is None


def test_records_stream_in_id_order_across_chunks_and_resume(dataset: Dataset) -> None:
    ids = sorted(PostFactory().platform_id for _ in range(7))
    streamed = [
        record["post_id"]
        for record in eligible_records(
            dataset=dataset,
            scope=Scope(),
            purposes=["training"],
            as_of=NOW,
            licensee_country="GB",
            chunk_size=3,
        )
    ]
    assert streamed == ids
    resumed = eligible_records(
        dataset=dataset,
        scope=Scope(),
        purposes=["training"],
        as_of=NOW,
        licensee_country="GB",
        chunk_size=3,
        after_post_id=ids[3],
    )
    assert [record["post_id"] for record in resumed] == ids[4:]


def test_records_are_plain_values_with_the_documented_fields(dataset: Dataset) -> None:
    post = PostFactory(hashtags="|ai|data|", public_metrics={"like_count": 3}, geo={"p": 1})
    (record,) = _records(dataset).values()
    assert record == {
        "post_id": post.platform_id,
        "created_at": post.created_at,
        "text": post.text,
        "lang": "en",
        "hashtags": ["ai", "data"],
        "kind": "original",
        "possibly_sensitive": False,
        "author_id": post.author.platform_id,
        "author_handle": post.author.handle,
        "referenced_post_id": None,
        "referenced_text": None,
        "referenced_author_id": None,
        "referenced_author_handle": None,
        "public_metrics": {"like_count": 3},
        "geo": {"p": 1},
    }


def test_emitted_text_redacts_mentions_of_accounts_that_are_not_public(dataset: Dataset) -> None:
    public = CreatorFactory(handle="PublicPerson")
    protected = CreatorFactory(handle="hidden_one")
    send(message("user_protect", protected.platform_id, hours(1)))
    post = PostFactory(
        text="hi @publicperson and @hidden_one and @nobody_known, mail me at a.b@example.org",
        mentions=[
            {"username": "PublicPerson", "id": str(public.platform_id)},
            {"username": "hidden_one", "id": str(protected.platform_id)},
        ],
    )
    record = _records(dataset)[post.platform_id]
    assert record["text"] == (
        "hi @publicperson and @[redacted] and @[redacted], mail me at [redacted email]"
    )
    # Before the protect event the account was public: as_of decides.
    earlier = _records(dataset, as_of=hours(0.5))[post.platform_id]
    assert earlier["text"] == (
        "hi @publicperson and @hidden_one and @[redacted], mail me at [redacted email]"
    )


def test_a_count_for_a_preview_runs_as_one_query(
    dataset: Dataset, django_assert_num_queries: object
) -> None:
    for _ in range(3):
        PostFactory()
    queryset = eligible_posts(
        dataset=dataset, scope=Scope(), purposes=ALL_PURPOSES, as_of=NOW, licensee_country="GB"
    )
    with django_assert_num_queries(1):  # type: ignore[operator]
        assert queryset.count() == 3
