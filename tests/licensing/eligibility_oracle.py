"""An independent recomputation of what may be delivered: every post's and author's state
folded from the ledger entries in Python (not the materialized columns the query reads), judged
by the pure predicate `is_eligible`. Shared by the preview and extract tests."""

from dataclasses import dataclass
from datetime import datetime

from licensing.models import Extract
from marketplace.consent.eligibility import AuthorState, PostState, is_eligible, is_withheld_in
from marketplace.consent.ledger import ON, Signal, fold
from marketplace.consent.scope import Scope
from marketplace.models import ConsentPurpose, Creator, Dataset, LedgerEntry, Post, SubjectKind


@dataclass(frozen=True)
class Oracle:
    """The state of every post and author folded from the ledger at `as_of`."""

    posts: dict[int, tuple[PostState, AuthorState, int]]  # id -> (post, author, author id)
    authors: dict[int, tuple[AuthorState, str]]  # id -> (state, handle)

    def eligible(
        self,
        dataset: Dataset,
        scope: Scope,
        purposes: list[str],
        country: str | None,
        as_of: datetime,
    ) -> set[int]:
        base = Scope.from_dict(dataset.base_scope)
        return {
            platform_id
            for platform_id, (post, author, _author_id) in self.posts.items()
            if is_eligible(
                post,
                author,
                consent_basis=dataset.consent_basis,
                scope=scope,
                purposes=purposes,
                licensee_country=country,
                as_of=as_of,
                base_scope=base,
            )
        }

    def public_handles(self, country: str | None) -> set[str]:
        return {
            handle.lower()
            for author, handle in self.authors.values()
            if not (author.is_deleted or author.is_suspended or author.is_protected)
            and not is_withheld_in(author.withheld_countries, country)
        }


def ledger_oracle(as_of: datetime) -> Oracle:
    entries = LedgerEntry.objects.values_list(
        "subject_kind", "subject_platform_id", "family", "event_at", "value"
    )
    folded = fold((Signal(*entry) for entry in entries), as_of=as_of)

    def value(kind: str, platform_id: int, family: str, default: str) -> str:
        winner = folded.get((kind, platform_id, family))
        return winner.value if winner is not None else default

    def flag(kind: str, platform_id: int, family: str) -> bool:
        return value(kind, platform_id, family, "off") == ON

    user = SubjectKind.USER
    authors = {
        platform_id: (
            AuthorState(
                is_deleted=flag(user, platform_id, "user_delete"),
                is_suspended=flag(user, platform_id, "user_suspend"),
                is_protected=flag(user, platform_id, "user_protect"),
                withheld_countries=value(user, platform_id, "user_withheld", ""),
                consent={
                    purpose: value(user, platform_id, f"consent_{purpose}", "")
                    for purpose in ConsentPurpose.values
                },
            ),
            handle,
        )
        for platform_id, handle in Creator.objects.values_list("platform_id", "handle")
    }
    post = SubjectKind.POST
    posts = {}
    for row in Post.objects.values(
        "platform_id",
        "created_at",
        "kind",
        "lang",
        "hashtags",
        "text",
        "possibly_sensitive",
        "author__platform_id",
    ):
        platform_id = row["platform_id"]
        state = PostState(
            created_at=row["created_at"],
            kind=row["kind"],
            lang=row["lang"],
            hashtags=tuple(tag for tag in row["hashtags"].split("|") if tag),
            text=row["text"],
            possibly_sensitive=row["possibly_sensitive"],
            is_deleted=flag(post, platform_id, "post_delete"),
            is_dropped=flag(post, platform_id, "post_drop"),
            withheld_countries=value(post, platform_id, "post_withheld", ""),
        )
        author_id = row["author__platform_id"]
        posts[platform_id] = (state, authors[author_id][0], author_id)
    return Oracle(posts=posts, authors=authors)


def expected_ids(extract: Extract) -> list[int]:
    """The posts an extract must deliver: eligible at its `as_of`, in id order, capped."""
    license_ = extract.license
    eligible = ledger_oracle(extract.as_of).eligible(
        license_.dataset,
        Scope.from_dict(license_.scope),
        list(license_.purposes),
        license_.organization.country or None,
        extract.as_of,
    )
    return sorted(eligible)[: extract.record_limit]
