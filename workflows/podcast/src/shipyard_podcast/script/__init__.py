"""Script: the two-host script written by a chain of writers, checked by the guardrails,
retried with feedback, every model request journaled."""
