"""Signals between areas that must not import each other."""

from django.dispatch import Signal

# Sent after the transaction that created or changed papers commits.
# kwargs: paper_ids (list[int]). Matching classifies and embeds them.
papers_changed = Signal()

# Sent when papers' pinned or hidden flags change (curation's bulk updates send no post_save).
# kwargs: paper_ids (list[int]). The landing page's cached copy is dropped.
papers_curated = Signal()
