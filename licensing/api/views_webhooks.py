"""`POST /api/v1/webhooks/stripe/`: Stripe's webhook endpoint.

The signature over the exact body is the credential, so this is a plain Django view (no DRF
authentication, no CSRF, not in the OpenAPI schema). It verifies the event, stores it by its
Stripe id and queues the processing after commit, answering 200 before any business logic runs:
Stripe retries anything slow or non-2xx. A redelivered event adds nothing.
"""

from functools import partial

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from licensing import tasks
from licensing.services import stripe_gateway
from licensing.services.billing_events import record_stripe_event


@csrf_exempt
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        detail = f"{request.method} is not allowed here."
        return JsonResponse(
            {"code": "method_not_allowed", "detail": detail}, status=405, headers={"Allow": "POST"}
        )
    try:
        event = stripe_gateway.construct_event(
            request.body, request.headers.get("Stripe-Signature", "")
        )
    except stripe_gateway.WebhookRejected as rejected:
        return JsonResponse({"code": rejected.code, "detail": rejected.detail}, status=400)
    with transaction.atomic():
        needs_processing = record_stripe_event(
            stripe_id=event.id, type_=event.type, payload=event.payload
        )
        if needs_processing:
            transaction.on_commit(partial(tasks.process_stripe_event.delay, event.id))
    return JsonResponse({"received": True, "id": event.id})
