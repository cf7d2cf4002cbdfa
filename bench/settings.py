"""The product's settings with the benchmark's URLconf: the same server, one no-op endpoint more."""

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
