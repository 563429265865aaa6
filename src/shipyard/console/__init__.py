"""The review console: a web app where people sign in, follow runs, and review, edit, hear
and decide what waits at a review gate, with every guardrail applied (docs/console.md).

    create_app(config) -> Starlette   # `shipyard console` serves it with uvicorn
    Accounts(engine)                  # users, sessions (`shipyard user add`)
"""

from shipyard.console._accounts import Accounts, User
from shipyard.console._app import create_app

__all__ = ["Accounts", "User", "create_app"]
