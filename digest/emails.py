"""Render a named email template set into a message with the right headers.

Every email is built here from templates/emails/<name>.subject.txt, <name>.txt and
<name>.html. Two Jinja2 environments, as Zulip does: HTML autoescaped, text not.

CSS is inlined into a self-contained HTML template once, when it is loaded, not into
every rendered email: css-inline on each digest was ~0.5 ms of a fan-out worker's CPU
for the same styles on the same elements. Templates that extend a layout are inlined
after rendering, as before (their blocks are only whole once rendered).
"""

import re

from dataclasses import dataclass
from functools import lru_cache

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


class _InliningLoader(FileSystemLoader):
    """Hands Jinja each self-contained HTML template with its CSS already inlined."""

    def __init__(self, searchpath):
        super().__init__(searchpath)
        self.inlined: set[str] = set()

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        if template.endswith(".html") and "<style" in source and not _LAYOUT_TAGS.search(source):
            source = template_inline_css(source)
            self.inlined.add(template)
        return source, filename, uptodate


# Tags that make a template's HTML incomplete until it is rendered.
_LAYOUT_TAGS = re.compile(r"{%-?\s*(extends|block|include|import|from|macro|call)\b")
_JINJA_TAGS = re.compile(r"{%.*?%}|{{.*?}}|{#.*?#}", re.S)
_HIDDEN = re.compile(r"<!--PBJINJA(\d+)-->|PBJINJA(\d+)X")
# Selectors whose match depends on siblings or on which elements exist: with both
# branches of an {% if %} present at inlining time they could match differently.
_POSITIONAL_CSS = re.compile(r"[+~]|:(first|last|nth|only|empty|not|has)")


def template_inline_css(source: str) -> str:
    """Inline a template's <style> rules into its elements' style attributes, Jinja tags untouched.

    Statements become HTML comments and expressions become plain words while css-inline
    parses the page, so every element (both branches of an {% if %}, one copy of a loop
    body) gets the styles its classes and ancestors give it, exactly as after rendering.
    """
    style = "".join(re.findall(r"<style[^>]*>(.*?)</style>", source, re.S))
    rules = re.sub(r"@media[^{]*{(?:[^{}]*{[^{}]*})*[^{}]*}", "", style)  # kept in <style>, never inlined
    if _POSITIONAL_CSS.search(rules):
        raise ValueError("template CSS uses sibling or structural selectors; inline it per email instead")
    tokens: list[str] = []

    def hide(match: re.Match) -> str:
        tokens.append(match.group(0))
        index = len(tokens) - 1
        return f"<!--PBJINJA{index}-->" if match.group(0)[1] in "%#" else f"PBJINJA{index}X"

    inlined = _inliner().inline(_JINJA_TAGS.sub(hide, source))
    restored: list[int] = []

    def show(match: re.Match) -> str:
        index = int(match.group(1) or match.group(2))
        restored.append(index)
        return tokens[index]

    out = _HIDDEN.sub(show, inlined)
    if sorted(restored) != list(range(len(tokens))):
        # A tag css-inline moved, dropped or escaped (inside an attribute, say).
        raise ValueError("could not inline CSS around this template's Jinja tags")
    return out


@lru_cache(maxsize=1)
def html_env() -> Environment:
    return Environment(
        loader=_InliningLoader(str(settings.EMAIL_TEMPLATES_DIR)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        auto_reload=settings.DEBUG,  # otherwise every render stats the template files
    )


@lru_cache(maxsize=1)
def text_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(settings.EMAIL_TEMPLATES_DIR)),
        autoescape=False,
        auto_reload=settings.DEBUG,
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
    env = html_env()
    html = env.get_template(f"{name}.html").render(ctx)
    if f"{name}.html" not in env.loader.inlined:
        html = _inliner().inline(html)
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
