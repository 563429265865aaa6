"""Every command module, imported so that each registers its commands on the app."""

from shipyard.cli import runs  # noqa: F401
