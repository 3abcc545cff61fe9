"""factory_boy factories for the corpus: creators, posts and datasets.

State columns default to a public, unrestricted account and a live original post; tests change
state through the ledger (`record_and_apply`) rather than by setting columns, unless they test
the materialized-column path itself.
"""

from datetime import UTC, datetime

import factory

from marketplace.models import ConsentBasis, Creator, Dataset, Post, PostKind

# A fixed origin keeps test instants readable: T0 + hours.
T0 = datetime(2024, 1, 1, tzinfo=UTC)


class CreatorFactory(factory.django.DjangoModelFactory[Creator]):
    class Meta:
        model = Creator

    platform_id = factory.Sequence(lambda n: 2_000_000 + n)
    handle = factory.Sequence(lambda n: f"creator_{n}")
    name = factory.LazyAttribute(lambda o: o.handle.replace("_", " ").title())
    country = "US"


class PostFactory(factory.django.DjangoModelFactory[Post]):
    class Meta:
        model = Post

    platform_id = factory.Sequence(lambda n: 9_000_000 + n)
    author = factory.SubFactory(CreatorFactory)
    created_at = T0
    text = factory.Sequence(lambda n: f"an ordinary public post number {n}")
    lang = "en"
    hashtags = ""
    kind = PostKind.ORIGINAL
    version_platform_id = factory.LazyAttribute(lambda o: o.platform_id)


class DatasetFactory(factory.django.DjangoModelFactory[Dataset]):
    class Meta:
        model = Dataset

    slug = factory.Sequence(lambda n: f"dataset-{n}")
    title = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    consent_basis = ConsentBasis.OPT_OUT
    base_scope = factory.LazyFunction(dict)
    is_published = True
