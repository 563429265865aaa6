"""shipyard: AI workflows that ship."""

from shipyard._artifacts import Artifact, ArtifactStore
from shipyard._config import Config, load_config
from shipyard._errors import (
    AudioRejected,
    BudgetExceeded,
    ConfigError,
    PermanentError,
    PublishFailed,
    ReviewRejected,
    RunNotFound,
    ScriptRejected,
    ShipyardError,
    SourceRejected,
    StepFailed,
    StepTimeout,
    TransientError,
)

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "ArtifactStore",
    "AudioRejected",
    "BudgetExceeded",
    "Config",
    "ConfigError",
    "PermanentError",
    "PublishFailed",
    "ReviewRejected",
    "RunNotFound",
    "ScriptRejected",
    "ShipyardError",
    "SourceRejected",
    "StepFailed",
    "StepTimeout",
    "TransientError",
    "__version__",
    "load_config",
]
