"""Review: the flagship's hooks on the core's review gate, and revising a script as asked."""
