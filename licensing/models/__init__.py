"""The deal: offers, license requests and their review, issued licenses."""

from licensing.models.billing import (
    CheckoutSession,
    CheckoutSessionStatus,
    LicenseSubscription,
    MeterReport,
    StripeCustomer,
    StripeEvent,
    StripeMeter,
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
from licensing.models.invoices import (
    FINAL_STATUSES,
    Invoice,
    InvoiceLine,
    InvoiceSource,
    InvoiceStatus,
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
    "FINAL_STATUSES",
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
    "Invoice",
    "InvoiceLine",
    "InvoiceSource",
    "InvoiceStatus",
    "License",
    "LicenseGroupObjectPermission",
    "LicenseRequest",
    "LicenseState",
    "LicenseSubscription",
    "LicenseUserObjectPermission",
    "MeterReport",
    "NoticeItem",
    "NoticeReason",
    "Offer",
    "PartState",
    "QuotaAlert",
    "RequestState",
    "ReviewDecision",
    "StripeCustomer",
    "StripeEvent",
    "StripeMeter",
    "UsageEvent",
    "UsageMeter",
    "UsageRollup",
]
