"""The deal: offers, license requests and their review, issued licenses."""

from licensing.models.billing import (
    CheckoutSession,
    CheckoutSessionStatus,
    StripeCustomer,
    StripeEvent,
)
from licensing.models.compliance import (
    ComplianceCursor,
    ComplianceWebhook,
    DeletionNotice,
    NoticeItem,
    NoticeReason,
)
from licensing.models.extracts import (
    OPEN_EXTRACT_STATES,
    Canary,
    Extract,
    ExtractDownload,
    ExtractFormat,
    ExtractPart,
    ExtractState,
    PartState,
)
from licensing.models.licenses import (
    License,
    LicenseGroupObjectPermission,
    LicenseState,
    LicenseUserObjectPermission,
)
from licensing.models.offers import Offer
from licensing.models.quotas import QuotaAlert
from licensing.models.requests import (
    OPEN_STATES,
    DecisionKind,
    LicenseRequest,
    RequestState,
    ReviewDecision,
)
from licensing.models.usage import UsageEvent, UsageMeter, UsageRollup

__all__ = [
    "OPEN_EXTRACT_STATES",
    "OPEN_STATES",
    "Canary",
    "CheckoutSession",
    "CheckoutSessionStatus",
    "ComplianceCursor",
    "ComplianceWebhook",
    "DecisionKind",
    "DeletionNotice",
    "Extract",
    "ExtractDownload",
    "ExtractFormat",
    "ExtractPart",
    "ExtractState",
    "License",
    "LicenseGroupObjectPermission",
    "LicenseRequest",
    "LicenseState",
    "LicenseUserObjectPermission",
    "NoticeItem",
    "NoticeReason",
    "Offer",
    "PartState",
    "QuotaAlert",
    "RequestState",
    "ReviewDecision",
    "StripeCustomer",
    "StripeEvent",
    "UsageEvent",
    "UsageMeter",
    "UsageRollup",
]
