"""Text that must not change how others read it.

Invisible direction and format marks (U+202E RIGHT-TO-LEFT OVERRIDE, the isolates, zero-width
marks, U+FEFF) reorder or hide what a page, a feed or a commit shows. Untrusted text loses
them before it is rendered or committed."""

from __future__ import annotations

import re

__all__ = ["INVISIBLE_MARKS", "one_line"]

INVISIBLE_MARKS = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def one_line(text: str) -> str:
    """`text` as one line: no line breaks, control characters or invisible marks."""
    visible = "".join(c if c.isprintable() else " " for c in INVISIBLE_MARKS.sub("", text))
    return " ".join(visible.split())
