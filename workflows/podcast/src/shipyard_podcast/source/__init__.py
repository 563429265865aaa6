"""Source: a research paper PDF in, a clean, validated `Paper` out (text in reading order,
front matter, structure)."""
