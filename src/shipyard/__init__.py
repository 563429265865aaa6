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

from shipyard._artifacts import Artifact, ArtifactStore, sha256_file, write_atomically
from shipyard._config import (
    Config,
    ProviderConfig,
    ProviderName,
    PublishConfig,
    ReviewConfig,
    VerifyConfig,
    load_config,
)
from shipyard._doctor import Check
from shipyard._engine import artifact_store, launch, shutdown
from shipyard._errors import (
    BudgetExceeded,
    ConfigError,
    PermanentError,
    PublishFailed,
    ReviewRejected,
    RunNotFound,
    ShipyardError,
    StepFailed,
    StepTimeout,
    TransientError,
)
from shipyard._fetch import Fetched, FetchRefused, fetch
from shipyard._git_target import GitTarget
from shipyard._inputs import FileInput, JsonInput, UrlInput
from shipyard._ledger import RunRecord, RunState
from shipyard._localprod import LocalProduction
from shipyard._notify import Notice, notify_owner
from shipyard._project import DEFAULT_PORT, init_project, production_root
from shipyard._providers import Quota, provider_quota
from shipyard._publish import publish_target
from shipyard._record import current_run_id, record_artifact, record_cost, record_event
from shipyard._redact import redact
from shipyard._review import Decision, Flag, Preview, Reviewed, ReviewGate, Segments, Severity
from shipyard._runner import StartedRun, cancel, decide, start_run, submit_run, wait_for
from shipyard._secrets import expand_secrets
from shipyard._targets import FileSet, PublishResult, PublishTarget, Site
from shipyard._telemetry import span
from shipyard._text import INVISIBLE_MARKS, one_line
from shipyard._verify import NotServed, Probe, Verification, notify_webhook, poll_until_served
from shipyard._version import __version__
from shipyard._workflow import Run, set_run_state, step, workflow

__all__ = [
    "DEFAULT_PORT",
    "INVISIBLE_MARKS",
    "Artifact",
    "ArtifactStore",
    "BudgetExceeded",
    "Check",
    "Config",
    "ConfigError",
    "Decision",
    "FetchRefused",
    "Fetched",
    "FileInput",
    "FileSet",
    "Flag",
    "GitTarget",
    "JsonInput",
    "LocalProduction",
    "NotServed",
    "Notice",
    "PermanentError",
    "Preview",
    "Probe",
    "ProviderConfig",
    "ProviderName",
    "PublishConfig",
    "PublishFailed",
    "PublishResult",
    "PublishTarget",
    "Quota",
    "ReviewConfig",
    "ReviewGate",
    "ReviewRejected",
    "Reviewed",
    "Run",
    "RunNotFound",
    "RunRecord",
    "RunState",
    "Segments",
    "Severity",
    "ShipyardError",
    "Site",
    "StartedRun",
    "StepFailed",
    "StepTimeout",
    "TransientError",
    "UrlInput",
    "Verification",
    "VerifyConfig",
    "__version__",
    "artifact_store",
    "cancel",
    "current_run_id",
    "decide",
    "expand_secrets",
    "fetch",
    "init_project",
    "launch",
    "load_config",
    "notify_owner",
    "notify_webhook",
    "one_line",
    "poll_until_served",
    "production_root",
    "provider_quota",
    "publish_target",
    "record_artifact",
    "record_cost",
    "record_event",
    "redact",
    "set_run_state",
    "sha256_file",
    "shutdown",
    "span",
    "start_run",
    "step",
    "submit_run",
    "wait_for",
    "workflow",
    "write_atomically",
]
