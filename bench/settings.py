"""Settings for bench/api_load.py only: the project's settings plus a bare Django view at
/bench/bare/ (bench/urls.py), the baseline the API's figures are compared with. Never used by
the product: production routes are marketplace/urls.py."""

from marketplace.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
