"""Setting up a project folder: its config file, state folder and, on request, a local
production (bare git remote, deploy hook, web root) that `shipyard serve` serves."""

from __future__ import annotations

from pathlib import Path

from shipyard._config import CONFIG_FILE, Config, load_config
from shipyard._errors import ConfigError

__all__ = ["DEFAULT_PORT", "init_project", "production_root"]

DEFAULT_PORT = 8753

_TEMPLATE = """\
# shipyard project configuration. Every setting has a default; see docs/configuration.md.
state_dir = ".shipyard"

[review]
reviewers = ["editor"]
deadline_hours = 72
auto_approve = {auto_approve}

[publish]
# The site repository's git remote and the URL where production serves it.
remote = "{remote}"
base_url = "{base_url}"

[verify]
deadline_seconds = 60

[workflows]
# The installed workflow plugins this project uses (`shipyard doctor` lists those installed).
enabled = [{enabled}]
{workflow_tables}"""


def production_root(config: Config) -> Path:
    """Where `init --local-production` puts the local production."""
    return config.state_folder("production")


def init_project(
    folder: Path,
    *,
    local_production: bool = False,
    port: int = DEFAULT_PORT,
    auto_approve: bool = False,
) -> Config:
    """Write `shipyard.toml` (unless there is one), enabling each installed workflow plugin
    with its commented table, and create the state folder."""
    from shipyard._localprod import LocalProduction
    from shipyard._plugins import import_workflows, installed_plugins
    from shipyard._workflow import workflows

    import_workflows()
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / CONFIG_FILE
    if not file.exists():
        remote = base_url = ""
        if local_production:
            remote = ".shipyard/production/remote.git"
            base_url = f"http://127.0.0.1:{port}/"
        own = [spec.init_table for spec in workflows().values() if spec.init_table]
        file.write_text(
            _TEMPLATE.format(
                remote=remote,
                base_url=base_url,
                auto_approve=str(auto_approve).lower(),
                enabled=", ".join(f'"{name}"' for name in installed_plugins()),
                workflow_tables="".join(f"\n{table}" for table in own),
            ),
            encoding="utf-8",
        )
    config = load_config(file)
    config.state.mkdir(parents=True, exist_ok=True)
    if local_production:
        production = LocalProduction(production_root(config), branch=config.publish.branch)
        if config.resolve(config.publish.remote) != production.remote:
            raise ConfigError(
                f"points at {config.publish.remote!r}, not the local production",
                key="publish.remote",
                file=str(file),
                hint=f"set it to {production.remote} or drop --local-production",
            )
        production.create()
    return config
