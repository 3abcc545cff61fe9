"""Who and what: organizations, people, API keys, the audit trail (and, next, the corpus)."""

from marketplace.models.api_keys import OPERATOR_ONLY_SCOPES, ApiKey, ApiKeyScope
from marketplace.models.audit import AuditEvent
from marketplace.models.catalog import (
    DATASHEET_SECTIONS,
    OFFERABLE_FIELDS,
    ConsentBasis,
    Dataset,
    DatasetGroupObjectPermission,
    DatasetUserObjectPermission,
    DatasetVisibility,
)
from marketplace.models.corpus import (
    ConsentChoice,
    ConsentPurpose,
    Creator,
    LedgerEntry,
    Post,
    PostKind,
    PostVersion,
    SubjectKind,
)
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
    "DATASHEET_SECTIONS",
    "OFFERABLE_FIELDS",
    "OPERATOR_ONLY_SCOPES",
    "REVIEW_ROLES",
    "ApiKey",
    "ApiKeyScope",
    "AuditEvent",
    "ConsentBasis",
    "ConsentChoice",
    "ConsentPurpose",
    "Creator",
    "Dataset",
    "DatasetGroupObjectPermission",
    "DatasetUserObjectPermission",
    "DatasetVisibility",
    "Invitation",
    "LedgerEntry",
    "Membership",
    "MembershipRole",
    "Organization",
    "OrganizationKind",
    "Post",
    "PostKind",
    "PostVersion",
    "SubjectKind",
    "User",
    "VettingDecision",
    "VettingDecisionKind",
    "VettingStatus",
]
