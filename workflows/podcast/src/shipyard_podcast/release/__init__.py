"""Release: the show's site (feed, pages), the episode committed to it, and what "served" means."""
