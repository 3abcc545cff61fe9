"""An independent recomputation of what an extract must contain: every post's and author's
state folded from the ledger in Python (not the materialized columns the query reads), judged
by the pure predicate `is_eligible`, in post id order, cut at the record limit."""

from datetime import datetime

from licensing.models import Extract
from marketplace.consent.eligibility import AuthorState, PostState, dataset_scope, is_eligible
from marketplace.consent.ledger import ON, fold, signals_for
from marketplace.consent.scope import Scope
from marketplace.models import ConsentPurpose, Post, SubjectKind


def eligible_ids(
    *, dataset, scope: Scope, purposes: list[str], as_of: datetime, country: str | None
) -> list[int]:
    posts = list(Post.objects.select_related("author").order_by("platform_id"))
    post_state = fold(signals_for(SubjectKind.POST, [p.platform_id for p in posts]), as_of=as_of)
    author_ids = sorted({p.author.platform_id for p in posts})
    user_state = fold(signals_for(SubjectKind.USER, author_ids), as_of=as_of)

    def value(kind: str, subject: int, family: str, default: str) -> str:
        decided = (post_state if kind == SubjectKind.POST else user_state).get(
            (kind, subject, family)
        )
        return decided.value if decided is not None else default

    authors: dict[int, AuthorState] = {}
    for author_id in author_ids:
        user = SubjectKind.USER
        authors[author_id] = AuthorState(
            is_deleted=value(user, author_id, "user_delete", "") == ON,
            is_suspended=value(user, author_id, "user_suspend", "") == ON,
            is_protected=value(user, author_id, "user_protect", "") == ON,
            withheld_countries=value(user, author_id, "user_withheld", ""),
            consent={
                purpose: value(user, author_id, f"consent_{purpose}", "")
                for purpose in ConsentPurpose.values
            },
        )
    eligible = []
    for post in posts:
        kind = SubjectKind.POST
        state = PostState(
            created_at=post.created_at,
            kind=post.kind,
            lang=post.lang,
            hashtags=tuple(tag for tag in post.hashtags.split("|") if tag),
            text=post.text,
            possibly_sensitive=post.possibly_sensitive,
            is_deleted=value(kind, post.platform_id, "post_delete", "") == ON,
            is_dropped=value(kind, post.platform_id, "post_drop", "") == ON,
            withheld_countries=value(kind, post.platform_id, "post_withheld", ""),
        )
        if is_eligible(
            state,
            authors[post.author.platform_id],
            consent_basis=dataset.consent_basis,
            scope=scope,
            purposes=purposes,
            licensee_country=country,
            as_of=as_of,
            base_scope=dataset_scope(dataset),
        ):
            eligible.append(post.platform_id)
    return eligible


def expected_ids(extract: Extract) -> list[int]:
    license_ = extract.license
    ids = eligible_ids(
        dataset=license_.dataset,
        scope=Scope.from_dict(license_.scope),
        purposes=list(license_.purposes),
        as_of=extract.as_of,
        country=license_.organization.country or None,
    )
    return ids[: extract.record_limit]
