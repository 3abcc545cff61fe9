"""Organizations: creation, vetting, membership and invitations."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from marketplace import tasks
from marketplace.errors import Conflict, InvalidInput, NotAllowed, NotFound
from marketplace.models import (
    Invitation,
    Membership,
    MembershipRole,
    Organization,
    OrganizationKind,
    User,
    VettingDecision,
    VettingDecisionKind,
    VettingStatus,
)
from marketplace.services.actor import Actor
from marketplace.services.audit import record_audit_event
from marketplace.services.notifications import INVITATION_SALT

# Which status each decision leads to, and from which statuses it may be taken.
_VETTING_TRANSITIONS: dict[str, tuple[VettingStatus, frozenset[str]]] = {
    VettingDecisionKind.APPROVE: (
        VettingStatus.VETTED,
        frozenset({VettingStatus.PENDING, VettingStatus.REJECTED, VettingStatus.SUSPENDED}),
    ),
    VettingDecisionKind.REJECT: (VettingStatus.REJECTED, frozenset({VettingStatus.PENDING})),
    VettingDecisionKind.SUSPEND: (VettingStatus.SUSPENDED, frozenset({VettingStatus.VETTED})),
}
VENDOR_ROLES = frozenset(
    {MembershipRole.OWNER, MembershipRole.ADMIN, MembershipRole.MEMBER, MembershipRole.BILLING}
)


def _unique_slug(base: str) -> str:
    root = slugify(base)[:50] or "org"
    slug, counter = root, 2
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{root}-{counter}"
        counter += 1
    return slug


def create_organization(
    *,
    actor: Actor,
    owner: User,
    name: str,
    slug: str = "",
    kind: str = OrganizationKind.VENDOR,
    legal_name: str = "",
    country: str = "",
    website: str = "",
    intended_use: str = "",
) -> Organization:
    """Create an organization with `owner` as its owner and its own permission group.

    Vendors start `pending`; the operator organization is vetted from birth. Audited as
    `organization.created`. Not idempotent: a taken slug is refused with 409.
    """
    if slug and Organization.objects.filter(slug=slug).exists():
        raise Conflict(f"The slug '{slug}' is taken; choose another.", code="slug_taken")
    slug = slug or _unique_slug(name)
    with transaction.atomic():
        group = Group.objects.create(name=f"org:{slug}")
        try:
            with transaction.atomic():
                organization = Organization.objects.create(
                    slug=slug,
                    name=name,
                    kind=kind,
                    vetting_status=VettingStatus.VETTED
                    if kind == OrganizationKind.OPERATOR
                    else VettingStatus.PENDING,
                    legal_name=legal_name,
                    country=country.upper(),
                    website=website,
                    intended_use=intended_use,
                    group=group,
                )
        except IntegrityError as error:
            raise Conflict(
                f"The slug '{slug}' is taken; choose another.", code="slug_taken"
            ) from error
        Membership.objects.create(organization=organization, user=owner, role=MembershipRole.OWNER)
        owner.groups.add(group)
        record_audit_event(
            actor=actor,
            action="organization.created",
            organization=organization,
            target=organization,
            data={"kind": kind, "owner": owner.email},
        )
    return organization


def vet_organization(
    *, actor: Actor, organization: Organization, decision: str, note: str = ""
) -> VettingDecision:
    """Record an operator's vetting decision and move the organization's status.

    approve: pending/rejected/suspended -> vetted; reject: pending -> rejected; suspend: vetted ->
    suspended. Guarded by a conditional update, so two operators deciding at once cannot both
    apply a stale decision; the loser gets 409. Audited as `organization.vetted`.
    """
    if decision not in _VETTING_TRANSITIONS:
        raise InvalidInput(
            f"Unknown decision '{decision}'; use approve, reject or suspend.",
            fields={"decision": ["Must be approve, reject or suspend."]},
        )
    if organization.is_operator:
        raise Conflict("The operator organization is not vetted.", code="operator_not_vetted")
    if decision in (VettingDecisionKind.REJECT, VettingDecisionKind.SUSPEND) and not note.strip():
        raise InvalidInput(
            "A reason is required to reject or suspend.", fields={"note": ["A reason is required."]}
        )
    resulting_status, allowed_from = _VETTING_TRANSITIONS[decision]
    with transaction.atomic():
        previous_status = organization.vetting_status
        updated = Organization.objects.filter(
            pk=organization.pk, vetting_status=previous_status, vetting_status__in=allowed_from
        ).update(vetting_status=resulting_status)
        if not updated:
            organization.refresh_from_db()
            raise Conflict(
                f"Cannot {decision} an organization that is {organization.vetting_status}.",
                code="invalid_transition",
            )
        vetting_decision = VettingDecision.objects.create(
            organization=organization,
            decision=decision,
            previous_status=previous_status,
            resulting_status=resulting_status,
            note=note,
            decided_by=actor.user,
        )
        record_audit_event(
            actor=actor,
            action="organization.vetted",
            organization=organization,
            target=organization,
            data={
                "decision": decision,
                "from": previous_status,
                "to": resulting_status,
                "note": note,
            },
        )
    organization.vetting_status = resulting_status
    return vetting_decision


def _check_role_for_organization(organization: Organization, role: str) -> None:
    allowed = VENDOR_ROLES | ({MembershipRole.REVIEWER} if organization.is_operator else set())
    if role not in allowed:
        raise InvalidInput(
            f"Role '{role}' is not available here; use one of {', '.join(sorted(allowed))}.",
            fields={"role": [f"Must be one of {', '.join(sorted(allowed))}."]},
        )


def invite_member(*, actor: Actor, organization: Organization, email: str, role: str) -> Invitation:
    """Invite an e-mail address with a role; the e-mail goes out from a Celery task after commit.

    Refuses an address that is already a member (409). Audited as `membership.invited`.
    """
    _check_role_for_organization(organization, role)
    email = email.strip().lower()
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise Conflict(f"{email} is already a member.", code="already_member")
    with transaction.atomic():
        invitation = Invitation.objects.create(
            organization=organization, email=email, role=role, invited_by=actor.user
        )
        record_audit_event(
            actor=actor,
            action="membership.invited",
            organization=organization,
            target=invitation,
            data={"email": email, "role": role},
        )
        transaction.on_commit(lambda: tasks.send_invitation_email.delay(invitation.pk))
    return invitation


def accept_invitation(*, actor: Actor, user: User, token: str) -> Membership:
    """Turn an invitation into a membership for the signed-in user whose e-mail it names.

    Safe to run twice: a second acceptance by the same user returns the same membership.
    """
    try:
        payload = signing.loads(
            token, salt=INVITATION_SALT, max_age=settings.INVITATION_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired as error:
        raise InvalidInput(
            "This invitation has expired; ask for a new one.", code="expired"
        ) from error
    except signing.BadSignature as error:
        raise InvalidInput("This invitation token is not valid.", code="invalid_token") from error
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("organization")
            .filter(pk=payload.get("invitation"))
            .first()
        )
        if invitation is None:
            raise NotFound("This invitation no longer exists.")
        if invitation.email != user.email.lower():
            raise NotAllowed(
                "This invitation was sent to another e-mail address.", code="wrong_recipient"
            )
        membership, created = Membership.objects.get_or_create(
            organization=invitation.organization, user=user, defaults={"role": invitation.role}
        )
        if invitation.accepted_at is None:
            invitation.accepted_at = timezone.now()
            invitation.accepted_by = user
            invitation.save(update_fields=["accepted_at", "accepted_by"])
        if created:
            user.groups.add(invitation.organization.group)
            record_audit_event(
                actor=actor,
                action="membership.joined",
                organization=invitation.organization,
                target=membership,
                data={"email": user.email, "role": membership.role},
            )
    return membership


def _owner_count(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=MembershipRole.OWNER).count()


def change_member_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change a member's role. The last owner cannot be demoted. Audited as `membership.changed`."""
    organization = membership.organization
    _check_role_for_organization(organization, role)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.role == role:
            return membership
        if membership.role == MembershipRole.OWNER and _owner_count(organization) == 1:
            raise Conflict("An organization needs at least one owner.", code="last_owner")
        previous = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        record_audit_event(
            actor=actor,
            action="membership.changed",
            organization=organization,
            target=membership,
            data={"email": membership.user.email, "from": previous, "to": role},
        )
    return membership


def remove_member(*, actor: Actor, membership: Membership) -> None:
    """Remove a member and their group. The last owner cannot be removed. Audited."""
    organization = membership.organization
    with transaction.atomic():
        if membership.role == MembershipRole.OWNER and _owner_count(organization) == 1:
            raise Conflict("An organization needs at least one owner.", code="last_owner")
        membership.user.groups.remove(organization.group)
        record_audit_event(
            actor=actor,
            action="membership.removed",
            organization=organization,
            target=membership,
            data={"email": membership.user.email, "role": membership.role},
        )
        membership.delete()
