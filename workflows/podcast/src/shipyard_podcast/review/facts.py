"""What a reviewer checks the credits against: the paper's front matter as facts, each with
where it came from and how sure the reading is. Shown in the review and by `shipyard
extract`; a module of its own, so that the command loads no review gate (nor the engine)."""

from __future__ import annotations

from shipyard_podcast.models import Paper

__all__ = ["front_matter_facts"]


def front_matter_facts(paper: Paper) -> list[dict[str, str]]:
    """The front matter as a reviewer checks it against the paper's first page."""
    front = paper.front
    authors = []
    for index, name in enumerate(paper.authors):
        places = front.affiliations[index] if index < len(front.affiliations) else []
        authors.append(f"{index + 1}. {name}" + (f" ({'; '.join(places)})" if places else ""))
    facts = [
        ("Title", f"{paper.title} — from {front.title_source}, {front.title_confidence:.0%} sure"),
        (
            "Authors",
            ("; ".join(authors) or "none found")
            + f" — from {front.authors_source}, {front.authors_confidence:.0%} sure",
        ),
        ("Venue", front.venue),
        ("Year", str(front.year or "")),
        ("DOI", front.doi),
        ("arXiv", front.arxiv_id),
        ("Doubts", "; ".join(front.doubts)),
    ]
    return [{"label": label, "value": value} for label, value in facts if value]
