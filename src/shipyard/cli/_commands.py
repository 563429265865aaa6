"""Every command module, imported so that each registers its commands on the app."""

import shipyard.cli.publish  # noqa: F401
import shipyard.cli.script  # noqa: F401
from shipyard.cli import runs  # noqa: F401
from shipyard.cli import source  # noqa: F401
