"""Signals about subscribers, for the matching side to act on (see digest/tasks/classify.py)."""

from django.dispatch import Signal

# Sent once when a pending address becomes confirmed (kwargs: subscriber). Confirming is a
# conditional UPDATE, so no post_save fires for it.
subscriber_confirmed = Signal()
