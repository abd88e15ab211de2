"""Render a named email template set into a message with the right headers.

Every email is built here from templates/emails/<name>.subject.txt, <name>.txt and
<name>.html. Two Jinja2 environments, as Zulip does: HTML autoescaped, text not.

CSS is inlined into a self-contained HTML template once, when it is loaded, not into
every rendered email: css-inline on each digest was ~0.5 ms of a fan-out worker's CPU
for the same styles on the same elements. Templates that extend a layout are inlined
after rendering, as before (their blocks are only whole once rendered).

A template's `{% for p in papers %}` loop renders each paper's card once: a digest's ten
cards are mostly ones other readers got too, only in other combinations, so whole-email
caches rarely hit while card caches do (see _Cards).
"""

import re

from dataclasses import dataclass
from functools import lru_cache

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, meta, select_autoescape
from markupsafe import Markup


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


_PAPERS_LOOP = re.compile(r"{% for p in papers %}(.*?){% endfor %}", re.S)
_LOOP_INDEX = re.compile(r"{{ loop\.index }}")
_INDEX_MARK = "PBLOOPINDEXX"
CARD_CACHE_SIZE = 4096


class _Cards:
    """One template split at its `{% for p in papers %}` loop: the page around it, and one card per paper.

    The page renders the cards, already made, in place of the loop, and a card is rendered
    once per distinct paper dict (its title, reasons, rank ...), so the bytes are the
    template's own. The loop's body may use only `p` and `{{ loop.index }}` (filled in
    afterwards), and the environment's trim_blocks/lstrip_blocks around the loop's tags are
    applied to the card's source as Jinja applies them; anything else keeps the plain render.
    """

    def __init__(self, env: Environment, source: str):
        self.page: Template | None = None
        match = _PAPERS_LOOP.search(source)
        if not match or len(_PAPERS_LOOP.findall(source)) != 1:
            return
        body = match.group(1)
        if "{% for" in body or "endfor" in body or "\r" in body:
            return
        if env.trim_blocks and body.startswith("\n"):  # the newline after {% for ... %}
            body = body[1:]
        if env.lstrip_blocks:  # the indentation of the {% endfor %} line
            head, newline, last = body.rpartition("\n")
            if not newline:
                return
            if not last.strip(" \t"):
                body = head + newline
        if not env.keep_trailing_newline and body.endswith("\n"):
            body += "\n"  # Jinja drops a template's last newline; this one is the card's own
        self.marks = len(_LOOP_INDEX.findall(body))
        body = _LOOP_INDEX.sub(_INDEX_MARK, body)
        if not meta.find_undeclared_variables(env.parse(body)) <= {"p"}:
            return
        self.card = env.from_string(body)
        self.page = env.from_string(source[: match.start()] + "{% for p in papers %}{{ p }}{% endfor %}" + source[match.end() :])
        self.markup = env.autoescape is True or callable(env.autoescape) and env.autoescape("x.html")
        self.cache: dict = {}

    def render(self, ctx: dict) -> str | None:
        cards = []
        for index, paper in enumerate(ctx.get("papers") or (), 1):
            if type(paper) is not dict:
                return None
            key = (tuple(paper), tuple(paper.values()))
            try:
                card = self.cache.get(key)
            except TypeError:  # a list among the values (the digest's own items hold tuples)
                key = (key[0], tuple(tuple(v) if type(v) is list else v for v in key[1]))
                try:
                    card = self.cache.get(key)
                except TypeError:  # a value that is not hashable
                    return None
            if card is None:
                if len(self.cache) >= CARD_CACHE_SIZE:
                    self.cache.clear()
                card = self.card.render(p=paper)
                # A paper's own text holding the mark would be numbered too: never cache such a card.
                card = self.cache[key] = card if card.count(_INDEX_MARK) == self.marks else False
            if card is False:
                return None
            if self.marks:
                card = card.replace(_INDEX_MARK, str(index))
            cards.append(Markup(card) if self.markup else card)
        return self.page.render({**ctx, "papers": cards})


_cards: dict[tuple, tuple[Template, _Cards]] = {}


def _render(env: Environment, name: str, ctx: dict) -> str:
    template = env.get_template(name)
    split = _cards.get((id(env), name))
    if split is None or split[0] is not template:  # first use, or reloaded (auto_reload in DEBUG)
        split = _cards[(id(env), name)] = (template, _Cards(env, env.loader.get_source(env, name)[0]))
    cards = split[1]
    if cards.page is not None and isinstance(ctx.get("papers"), list):
        out = cards.render(ctx)
        if out is not None:
            return out
    return template.render(ctx)


def email_render(*, name: str, context: dict) -> RenderedEmail:
    base = {"site_name": settings.SITE_NAME, "site_url": settings.SITE_URL}
    ctx = {**base, **context}
    subject = " ".join(text_env().get_template(f"{name}.subject.txt").render(ctx).split())
    text = _render(text_env(), f"{name}.txt", ctx)
    env = html_env()
    html = _render(env, f"{name}.html", ctx)
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
