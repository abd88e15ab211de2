"""Signals between areas that must not import each other."""

from django.dispatch import Signal

# Sent after the transaction that created or changed papers commits.
# kwargs: paper_ids (list[int]). Matching classifies and embeds them.
papers_changed = Signal()
