"""Logging filters that keep working links out of the logs.

The last path segment of /confirm/, /manage/ and /unsubscribe/ URLs (subscriptions/urls.py) is a
signed token: whoever holds it can change a reader's settings for 60 days or unsubscribe them for
365. Django logs the path of every 4xx/5xx (django.request, django.security.csrf), runserver every
request line (django.server), and gunicorn's access log the request line, path and Referer (a page
linking onward sends its own token-bearing URL as the Referer). TokenMaskFilter rewrites those to
/manage/…/ before any handler formats them; other paths are left as they are.
"""

import logging
import re
from collections.abc import Mapping

MASK = "…"

# A route's token segment: after the path's start, whitespace (a request line "GET /manage/x/ HTTP/1.1")
# or a scheme and host (a Referer "https://host/manage/x/").
_TOKEN_PATH = re.compile(r"(^|\s|//[^/\s?#]*)(/(?:confirm|manage|unsubscribe)/)[^/?#\s]+")


def mask_tokens(text: str) -> str:
    """`text` with the token of every confirm/manage/unsubscribe path replaced by MASK."""
    return _TOKEN_PATH.sub(rf"\1\2{MASK}", text)


def _masked(value):
    return mask_tokens(value) if isinstance(value, str) else value


class TokenMaskFilter(logging.Filter):
    """Masks link tokens in a record's message and arguments; never drops a record.

    Works on positional arguments (Django: `"%s: %s", reason, path`) and on a mapping
    (gunicorn.access: the atoms dict, in which 'r', 'U', 'f', '{referer}i', '{raw_uri}e' and
    others hold the path). A dict is changed in place, so it keeps its class: gunicorn's
    SafeAtoms answers '-' for an atom it lacks, and building a new one would escape its quotes twice.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _masked(record.msg)
        args = record.args
        if isinstance(args, dict):
            for key in list(args.keys()):
                dict.__setitem__(args, key, _masked(dict.__getitem__(args, key)))
        elif isinstance(args, Mapping):
            record.args = {key: _masked(value) for key, value in args.items()}
        elif isinstance(args, tuple):
            record.args = tuple(_masked(value) for value in args)
        return True
