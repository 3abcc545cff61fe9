"""Who and what: organizations, people, API keys, the audit trail (and, next, the corpus)."""

from marketplace.models.api_keys import OPERATOR_ONLY_SCOPES, ApiKey, ApiKeyScope
from marketplace.models.audit import AuditEvent
from marketplace.models.organizations import (
    ADMIN_ROLES,
    REVIEW_ROLES,
    Invitation,
    Membership,
    MembershipRole,
    Organization,
    OrganizationKind,
    VettingDecision,
    VettingDecisionKind,
    VettingStatus,
)
from marketplace.models.users import User

__all__ = [
    "ADMIN_ROLES",
    "OPERATOR_ONLY_SCOPES",
    "REVIEW_ROLES",
    "ApiKey",
    "ApiKeyScope",
    "AuditEvent",
    "Invitation",
    "Membership",
    "MembershipRole",
    "Organization",
    "OrganizationKind",
    "User",
    "VettingDecision",
    "VettingDecisionKind",
    "VettingStatus",
]
