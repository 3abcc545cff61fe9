from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing: requests, licenses, extracts and billing"
    default_auto_field = "django.db.models.BigAutoField"
