"""shipyard: AI workflows that ship.

What a workflow author needs, and nothing private (docs/workflows.md shows it in use):

- durable work: `workflow`, `step`, `Run`, `set_run_state`, `RunState`;
- the run's record: `record_event`, `record_artifact`, `record_cost`, `artifact_store`, and
  `span` (a trace span of the workflow's own, when tracing is on);
- people: `ReviewGate`, `Reviewed`, `Decision`, `Flag`, `Segments`, `Preview`;
- providers' limits, held across workers: `provider_quota` (a `Quota`), `ProviderName`;
- production: `GitTarget` (publishing), `poll_until_served`, `Probe`, `Verification`,
  `notify_webhook`; owners told: `notify_owner`, `Notice`;
- running: `launch`, `start_run`, `submit_run`, `wait_for`, `decide`, `cancel`, `shutdown`;
  a local production for demos and tests: `init_project`, `LocalProduction`;
- inputs, and links fetched within limits (`fetch`, `Fetched`, `FetchRefused`);
  configuration (with `${NAME}` secrets: `expand_secrets`, `redact`) and errors.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:  # the names' types; at run time `__getattr__` loads each when asked
    from shipyard._artifacts import Artifact as Artifact
    from shipyard._artifacts import ArtifactStore as ArtifactStore
    from shipyard._artifacts import sha256_file as sha256_file
    from shipyard._artifacts import write_atomically as write_atomically
    from shipyard._config import Config as Config
    from shipyard._config import ProviderConfig as ProviderConfig
    from shipyard._config import ProviderName as ProviderName
    from shipyard._config import PublishConfig as PublishConfig
    from shipyard._config import ReviewConfig as ReviewConfig
    from shipyard._config import VerifyConfig as VerifyConfig
    from shipyard._config import load_config as load_config
    from shipyard._doctor import Check as Check
    from shipyard._engine import artifact_store as artifact_store
    from shipyard._engine import launch as launch
    from shipyard._engine import shutdown as shutdown
    from shipyard._errors import BudgetExceeded as BudgetExceeded
    from shipyard._errors import ConfigError as ConfigError
    from shipyard._errors import PermanentError as PermanentError
    from shipyard._errors import PublishFailed as PublishFailed
    from shipyard._errors import ReviewRejected as ReviewRejected
    from shipyard._errors import RunNotFound as RunNotFound
    from shipyard._errors import ShipyardError as ShipyardError
    from shipyard._errors import StepFailed as StepFailed
    from shipyard._errors import StepTimeout as StepTimeout
    from shipyard._errors import TransientError as TransientError
    from shipyard._fetch import Fetched as Fetched
    from shipyard._fetch import FetchRefused as FetchRefused
    from shipyard._fetch import fetch as fetch
    from shipyard._flag import Flag as Flag
    from shipyard._flag import Severity as Severity
    from shipyard._git_target import GitTarget as GitTarget
    from shipyard._inputs import FileInput as FileInput
    from shipyard._inputs import JsonInput as JsonInput
    from shipyard._inputs import UrlInput as UrlInput
    from shipyard._ledger import RunRecord as RunRecord
    from shipyard._ledger import RunState as RunState
    from shipyard._localprod import LocalProduction as LocalProduction
    from shipyard._notify import Notice as Notice
    from shipyard._notify import notify_owner as notify_owner
    from shipyard._project import DEFAULT_PORT as DEFAULT_PORT
    from shipyard._project import init_project as init_project
    from shipyard._project import production_root as production_root
    from shipyard._providers import Quota as Quota
    from shipyard._providers import provider_quota as provider_quota
    from shipyard._publish import publish_target as publish_target
    from shipyard._record import current_run_id as current_run_id
    from shipyard._record import record_artifact as record_artifact
    from shipyard._record import record_cost as record_cost
    from shipyard._record import record_event as record_event
    from shipyard._redact import redact as redact
    from shipyard._review import Decision as Decision
    from shipyard._review import Preview as Preview
    from shipyard._review import Reviewed as Reviewed
    from shipyard._review import ReviewGate as ReviewGate
    from shipyard._review import Segments as Segments
    from shipyard._runner import StartedRun as StartedRun
    from shipyard._runner import cancel as cancel
    from shipyard._runner import decide as decide
    from shipyard._runner import start_run as start_run
    from shipyard._runner import submit_run as submit_run
    from shipyard._runner import wait_for as wait_for
    from shipyard._secrets import expand_secrets as expand_secrets
    from shipyard._targets import FileSet as FileSet
    from shipyard._targets import PublishResult as PublishResult
    from shipyard._targets import PublishTarget as PublishTarget
    from shipyard._targets import Site as Site
    from shipyard._telemetry import span as span
    from shipyard._text import INVISIBLE_MARKS as INVISIBLE_MARKS
    from shipyard._text import one_line as one_line
    from shipyard._verify import NotServed as NotServed
    from shipyard._verify import Probe as Probe
    from shipyard._verify import Verification as Verification
    from shipyard._verify import notify_webhook as notify_webhook
    from shipyard._verify import poll_until_served as poll_until_served
    from shipyard._version import __version__ as __version__
    from shipyard._workflow import Run as Run
    from shipyard._workflow import set_run_state as set_run_state
    from shipyard._workflow import step as step
    from shipyard._workflow import workflow as workflow

# Each module and the public names it holds. A module is imported when one of its names is
# first asked for, so a process that needs a few (the extraction child: an error, a flag, the
# configuration's types) does not load the engine, DBOS and SQLAlchemy (0.5 CPU-s).
_MODULES = {
    "shipyard._artifacts": ("Artifact", "ArtifactStore", "sha256_file", "write_atomically"),
    "shipyard._config": (
        "Config",
        "ProviderConfig",
        "ProviderName",
        "PublishConfig",
        "ReviewConfig",
        "VerifyConfig",
        "load_config",
    ),
    "shipyard._doctor": ("Check",),
    "shipyard._engine": ("artifact_store", "launch", "shutdown"),
    "shipyard._errors": (
        "BudgetExceeded",
        "ConfigError",
        "PermanentError",
        "PublishFailed",
        "ReviewRejected",
        "RunNotFound",
        "ShipyardError",
        "StepFailed",
        "StepTimeout",
        "TransientError",
    ),
    "shipyard._fetch": ("Fetched", "FetchRefused", "fetch"),
    "shipyard._flag": ("Flag", "Severity"),
    "shipyard._git_target": ("GitTarget",),
    "shipyard._inputs": ("FileInput", "JsonInput", "UrlInput"),
    "shipyard._ledger": ("RunRecord", "RunState"),
    "shipyard._localprod": ("LocalProduction",),
    "shipyard._notify": ("Notice", "notify_owner"),
    "shipyard._project": ("DEFAULT_PORT", "init_project", "production_root"),
    "shipyard._providers": ("Quota", "provider_quota"),
    "shipyard._publish": ("publish_target",),
    "shipyard._record": ("current_run_id", "record_artifact", "record_cost", "record_event"),
    "shipyard._redact": ("redact",),
    "shipyard._review": ("Decision", "Preview", "Reviewed", "ReviewGate", "Segments"),
    "shipyard._runner": ("StartedRun", "cancel", "decide", "start_run", "submit_run", "wait_for"),
    "shipyard._secrets": ("expand_secrets",),
    "shipyard._targets": ("FileSet", "PublishResult", "PublishTarget", "Site"),
    "shipyard._telemetry": ("span",),
    "shipyard._text": ("INVISIBLE_MARKS", "one_line"),
    "shipyard._verify": (
        "NotServed",
        "Probe",
        "Verification",
        "notify_webhook",
        "poll_until_served",
    ),
    "shipyard._version": ("__version__",),
    "shipyard._workflow": ("Run", "set_run_state", "step", "workflow"),
}
_HOMES = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    value = getattr(_importlib.import_module(home), name)
    globals()[name] = value  # asked for once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
