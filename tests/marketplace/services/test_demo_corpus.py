"""seed_demo's corpus: a small generated corpus, two published datasets, a linked creator."""

import pytest

from marketplace.models import Creator, Dataset, LedgerEntry, Post, User
from marketplace.services.demo import DEMO_USERS, seed_demo_accounts

pytestmark = pytest.mark.django_db


def test_the_demo_has_a_corpus_datasets_and_a_linked_creator_and_stays_idempotent() -> None:
    # when the demo is seeded twice
    seed_demo_accounts()
    first = Post.objects.count(), Creator.objects.count(), LedgerEntry.objects.count()
    seed_demo_accounts()
    # then the corpus was loaded once
    assert first == (Post.objects.count(), Creator.objects.count(), LedgerEntry.objects.count())
    assert first[0] == 3000
    datasets = {d.slug: d for d in Dataset.objects.published()}
    assert sorted(datasets) == ["english-public-posts-2024", "multilingual-public-posts-2024"]
    english = datasets["english-public-posts-2024"]
    assert (english.consent_basis, english.base_scope["languages"]) == ("opt_in", ["en"])
    assert datasets["multilingual-public-posts-2024"].consent_basis == "opt_out"
    creator = Creator.objects.get(user=User.objects.get(email=DEMO_USERS["creator"]))
    assert (creator.is_protected, creator.is_deleted, creator.is_suspended) == (False,) * 3
    assert creator.posts.exists()
    assert Creator.objects.exclude(user=None).count() == 1
