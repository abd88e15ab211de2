"""Render a named email template set into a message with the right headers.

Every email is built here from templates/emails/<name>.subject.txt, <name>.txt and
<name>.html. Two Jinja2 environments, as Zulip does: HTML autoescaped, text not.
"""

from dataclasses import dataclass
from functools import lru_cache

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


@lru_cache(maxsize=1)
def html_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(settings.EMAIL_TEMPLATES_DIR)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )


@lru_cache(maxsize=1)
def text_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(settings.EMAIL_TEMPLATES_DIR)),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    # keep_style_tags: media queries (dark mode, narrow screens) cannot be inlined.
    return css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def email_render(*, name: str, context: dict) -> RenderedEmail:
    base = {"site_name": settings.SITE_NAME, "site_url": settings.SITE_URL}
    ctx = {**base, **context}
    subject = " ".join(text_env().get_template(f"{name}.subject.txt").render(ctx).split())
    text = text_env().get_template(f"{name}.txt").render(ctx)
    html = _inliner().inline(html_env().get_template(f"{name}.html").render(ctx))
    return RenderedEmail(subject=subject, text=text, html=html)


def email_build(
    *,
    rendered: RenderedEmail,
    to: str,
    headers: dict | None = None,
    connection=None,
) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=headers or {},
        connection=connection,
    )
    message.attach_alternative(rendered.html, "text/html")
    return message
