"""paper-to-podcast: shipyard's flagship workflow, one module per stage."""
