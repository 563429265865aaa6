"""shipyard's version: part of the pinned application version runs are recorded under."""

__version__ = "0.2.0"
