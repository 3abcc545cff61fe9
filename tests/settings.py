"""Test settings: the project's settings with a fast hasher, in-memory e-mail and a temp var/.

Only what tests must change is changed here, so these settings cannot drift from production.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("COMMONPLACE_VAR_DIR", tempfile.mkdtemp(prefix="commonplace-test-"))

from marketplace.settings import *  # noqa: F403

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - whitenoise warns if it is missing
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
LOGGING = {"version": 1, "disable_existing_loggers": False}
# Tests that need a worker start a real one; everything else must not need one.
CELERY_TASK_ALWAYS_EAGER = False
# No throttling surprises between tests: each test starts with an empty cache anyway.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
