"""Every command module, imported so that each registers its commands on the app."""

from shipyard.cli import (
    publish,  # noqa: F401
    runs,  # noqa: F401
)
