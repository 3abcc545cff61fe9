"""The Celery application: configured from Django settings, tasks discovered in both apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

app = Celery("commonplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Periodic jobs live apart from the tasks that services queue, to avoid import cycles.
app.autodiscover_tasks(related_name="schedules")
