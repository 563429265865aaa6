"""Audio: turns spoken by the voices, cached, mastered into one episode that passes the gate."""
