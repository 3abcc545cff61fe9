"""A minimal factory for platform accounts (creators), for the creator self-service tests."""

import factory

from marketplace.models import Creator


class CreatorFactory(factory.django.DjangoModelFactory[Creator]):
    class Meta:
        model = Creator

    platform_id = factory.Sequence(lambda n: 1_000_000 + n)
    handle = factory.Sequence(lambda n: f"creator{n}")
    name = factory.Faker("name")
    country = "GB"
