"""Counted nouns for admin messages and command output: "1 paper", "2 papers", never "paper(s)".

ngettext picks the form from the number (in English the singular for 1 only, so "0 papers"),
the way the digests count their papers (delivery.papers_count).
"""

from django.utils.translation import ngettext


def counted(n: int, singular: str, plural: str) -> str:
    """The number and the noun that agrees with it: counted(1, "paper", "papers") is "1 paper"."""
    return f"{n} {ngettext(singular, plural, n)}"
