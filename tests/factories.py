"""factory_boy factories for the marketplace models."""

import factory
from django.contrib.auth.models import Group

from marketplace.models import (
    Membership,
    MembershipRole,
    Organization,
    OrganizationKind,
    User,
    VettingStatus,
)

PASSWORD = "a-long-test-password"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory[Organization]):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    kind = OrganizationKind.VENDOR
    vetting_status = VettingStatus.VETTED
    country = "GB"
    group = factory.LazyAttribute(lambda o: Group.objects.create(name=f"org:{o.slug}"))


class OperatorFactory(OrganizationFactory):
    kind = OrganizationKind.OPERATOR
    slug = factory.Sequence(lambda n: f"operator-{n}")


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = MembershipRole.MEMBER

    @factory.post_generation
    def join_group(obj, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create:
            obj.user.groups.add(obj.organization.group)
