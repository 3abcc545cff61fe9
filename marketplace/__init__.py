"""Commonplace project package and the app for organizations, people, API keys and the corpus."""

from marketplace.celery import app as celery_app

__all__ = ["celery_app"]
