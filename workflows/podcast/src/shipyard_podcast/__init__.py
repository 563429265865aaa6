"""paper-to-podcast, shipyard's flagship workflow: one folder per stage of the flow.

    source/   the PDF in, a validated `Paper` out
    script/   the two-host script: writers, guardrails, the model journal
    review/   the review gate's hooks, and revising as a reviewer asked
    audio/    voices, synthesis, mastering and the audio gate
    release/  the show's site, the episode committed to it, what "served" means

`flow` runs them as durable steps; `models` is what one stage hands the next; `settings` is
the `[podcast]` table of shipyard.toml.
"""

__version__ = "0.2.0"
