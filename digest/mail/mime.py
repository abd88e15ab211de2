"""Serialize a plain Django email (text, optionally one HTML alternative) to RFC 5322 bytes, fast.

Why hand-written: Django's EmailMessage.message().as_bytes() runs the stdlib email
generator, which re-splits every body line, scans the whole text with a regex for a
free boundary and checks line lengths in Python: ~2-3 ms of a fan-out worker's CPU per
digest, more than rendering it. The bytes here are the same message: the headers are
produced by the same pieces Django and the generator use (Django's
forbid_multi_line_headers, compat32's folding), in the same order; the bodies get the
same transfer encodings (7bit/8bit, quoted-printable when a line exceeds 998 bytes) with
binascii doing the work. Anything else (attachments, other alternatives, other charsets)
returns None and goes through Django's own path.
"""

import binascii
import re
import secrets
from functools import lru_cache
from email import policy as email_policy
from email.utils import formatdate, make_msgid

import numpy as np
from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.message import DNS_NAME, RFC5322_EMAIL_LINE_LENGTH_LIMIT, forbid_multi_line_headers

# What Django's messages carry (compat32), folding at 78 as the generator does.
_POLICY = email_policy.compat32.clone(linesep="\r\n")
# The generator's own idea of a line ending (email.generator.NLCRE).
_NEWLINES = re.compile(r"\r\n|\r|\n")
_LIST_HEADERS = ("To", "Cc", "Reply-To")


def message_bytes(message: EmailMessage) -> bytes | None:
    """The message as it goes on the wire (CRLF line endings), or None if it is not the simple shape."""
    if type(message) not in (EmailMessage, EmailMultiAlternatives):
        return None
    encoding = message.encoding or settings.DEFAULT_CHARSET
    alternatives = getattr(message, "alternatives", [])
    if (
        str(encoding).lower() != "utf-8"
        or message.attachments
        or message.content_subtype != "plain"
        or len(alternatives) > 1
        or any(alt[1] != "text/html" for alt in alternatives)
        or (alternatives and not message.body)
        or (alternatives and getattr(message, "alternative_subtype", "alternative") != "alternative")
    ):
        return None
    try:
        text_part = _text_part(message.body, "plain")
        parts = [text_part] + [_text_part(alt[0], "html") for alt in alternatives]
    except UnicodeEncodeError:  # lone surrogates: let the stdlib deal with them
        return None

    if alternatives:
        boundary = _boundary(parts)
        top = [("Content-Type", f'multipart/alternative; boundary="{boundary}"'), ("MIME-Version", "1.0")]
        body = [f"--{boundary}\r\n".encode()]
        for i, (headers, payload) in enumerate(parts):
            if i:
                body.append(f"\r\n--{boundary}\r\n".encode())
            body.append(_header_block(headers))
            body.append(b"\r\n")
            body.append(payload)
        body.append(f"\r\n--{boundary}--\r\n".encode())
    else:
        top, payload = parts[0]
        body = [payload]

    headers = list(top)
    extra = message.extra_headers

    def add(name, value):
        if name in ("Subject", "From"):  # repeat across a fan-out; a Subject always goes through Header
            headers.append(_checked_header_cached(name, str(value), encoding))
        else:
            headers.append(forbid_multi_line_headers(name, value, encoding))

    add("Subject", message.subject)
    add("From", extra.get("From", message.from_email))
    for name, values in zip(_LIST_HEADERS, (message.to, message.cc, message.reply_to)):
        if name in extra:
            add(name, extra[name])
        elif values:
            add(name, ", ".join(str(v) for v in values))
    lowered = {key.lower() for key in extra}
    if "date" not in lowered:
        add("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME))
    if "message-id" not in lowered:
        add("Message-ID", make_msgid(domain=DNS_NAME))
    for name, value in extra.items():
        if name.lower() not in {"from", "to", "cc", "reply-to"}:
            add(name, value)
    return b"".join([_header_block(headers), b"\r\n", *body])


@lru_cache(maxsize=256)
def _checked_header_cached(name: str, value: str, encoding: str) -> tuple[str, str]:
    return forbid_multi_line_headers(name, value, encoding)


def _text_part(text: str, subtype: str) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and encoded payload of one text/<subtype> utf-8 part, as Django's SafeMIMEText makes it."""
    # str.replace when there is no CR to worry about: the regex costs ~0.2 ms on a digest.
    raw = (text.replace("\n", "\r\n") if "\r" not in text else _NEWLINES.sub("\r\n", text)).encode("utf-8")
    if _longest_line(raw) > RFC5322_EMAIL_LINE_LENGTH_LIMIT:
        # Django switches to quoted-printable for long lines (its #22561); binascii
        # keeps CRLF line breaks when the input uses them.
        cte, payload = "quoted-printable", binascii.b2a_qp(raw, istext=True)
    else:
        cte, payload = ("7bit" if raw.isascii() else "8bit"), raw
    headers = [("Content-Type", f'text/{subtype}; charset="utf-8"'), ("MIME-Version", "1.0"),
               ("Content-Transfer-Encoding", cte)]
    return headers, payload


def _longest_line(raw: bytes) -> int:
    """max(map(len, raw.split(b"\\r\\n"))) for CRLF-only text, from the LF positions (numpy: ~half the time)."""
    if len(raw) <= RFC5322_EMAIL_LINE_LENGTH_LIMIT:
        return len(raw)  # an upper bound is enough below the limit
    newlines = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 10)
    if not len(newlines):
        return len(raw)
    # A line runs from after one LF to before the next CR: the gap minus the CRLF.
    inner = int(np.diff(newlines).max()) - 2 if len(newlines) > 1 else 0
    return max(int(newlines[0]) - 1, inner, len(raw) - int(newlines[-1]) - 1)


def _header_block(headers: list[tuple[str, str]]) -> bytes:
    return "".join(_fold(name, value) for name, value in headers).encode("ascii", "surrogateescape")


def _fold(name: str, value: str) -> str:
    # compat32 folds through email.header.Header (~60 us a header). A short ASCII value
    # with single spaces comes out unchanged, so skip it; the rest folds as before,
    # cached, since most headers repeat from message to message.
    if len(name) + len(value) <= 76 and value.isascii() and value.isprintable() and " ".join(value.split()) == value:
        return f"{name}: {value}\r\n"
    return _fold_slow(name, value)


# compat32 folds plain ASCII through email.header's _ValueFormatter, which decides only
# by whitespace, the split characters ";" and "," and lengths. So a value folds like its
# "shape" (every other character as x), and a header that differs per reader only
# inside its words (List-Unsubscribe's token, the boundary) folds from one cached shape.
# CR and LF are not word characters: the folded shape's line breaks must not join a word, or
# no folded value ever matched its shape (every such header was folded afresh, ~60 us each).
_WORD = re.compile(r"[^ \t;,\r\n]+")


def _fold_slow(name: str, value: str) -> str:
    if value.isascii() and value.isprintable():
        words = _WORD.findall(value)
        folded = _fold_cached(name, _WORD.sub(lambda m: "x" * len(m.group()), value))
        head, body = folded[: len(name) + 1], folded[len(name) + 1 :]
        shaped = _WORD.findall(body)
        if [len(w) for w in shaped] == [len(w) for w in words] and all(w.count("x") == len(w) for w in shaped):
            filled = iter(words)
            return head + _WORD.sub(lambda m: next(filled), body)
    return _fold_cached(name, value)


@lru_cache(maxsize=256)
def _fold_cached(name: str, value: str) -> str:
    return _POLICY.fold(name, value)


def _boundary(parts) -> str:
    # Same shape as the stdlib's boundaries; a random one cannot realistically occur
    # in the bodies, but check as the generator does.
    while True:
        boundary = "=" * 15 + str(secrets.randbits(63)).rjust(19, "0") + "=="
        token = boundary.encode()
        if not any(token in payload for _, payload in parts):
            return boundary
