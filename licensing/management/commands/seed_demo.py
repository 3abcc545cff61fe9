from django.conf import settings
from django.core.management.base import BaseCommand

from licensing.services.demo import seed_demo_offers
from marketplace.services.demo import seed_demo_accounts


# Lives in the licensing app because the demo needs both apps (accounts and corpus from
# marketplace, offers from licensing), and marketplace never imports licensing.
class Command(BaseCommand):
    help = "Create demo operator, vendor and creator accounts and print the logins and an API key."

    def handle(self, *args: object, **options: object) -> None:
        demo = seed_demo_accounts()
        seed_demo_offers()
        base = settings.PUBLIC_BASE_URL
        self.stdout.write(
            "\nCommonplace demo is ready.\n"
            f"  API:             {base}/api/v1/\n"
            f"  Swagger UI:      {base}/api/docs/\n"
            f"  Admin:           {base}/admin/\n"
            f"  Health:          {base}/healthz\n"
            f"  Logins (password for all: {demo.password}):\n"
            f"    operator reviewer  {demo.logins['reviewer']}   (staff; admin site)\n"
            f"    vendor admin       {demo.logins['vendor_admin']}"
            f"   (organization {demo.vendor.slug})\n"
            f"    creator            {demo.logins['creator']}\n"
            f"  Vendor API key (scopes read, extract, download; shown once):\n"
            f"    {demo.vendor_api_key}\n"
            f"  Try: curl -H 'Authorization: Api-Key {demo.vendor_api_key}' {base}/api/v1/orgs/\n"
        )
