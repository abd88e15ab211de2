"""arXiv's category names: an archive (cs, hep-th, ...) optionally with a subject class (cs.LG, cond-mat.mes-hall).

Kept free of Django imports: settings.py checks ARXIV_CATEGORIES with it at start.
"""

import re

# The archives of arXiv's category taxonomy (arxiv.org/category_taxonomy). A regex alone took
# any lower-case word, so `--category foo` queried arXiv for a category that does not exist
# and quietly fetched nothing.
ARCHIVES = frozenset(
    {
        "astro-ph", "cond-mat", "cs", "econ", "eess", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th",
        "math", "math-ph", "nlin", "nucl-ex", "nucl-th", "physics", "q-bio", "q-fin", "quant-ph", "stat",
    }
)  # fmt: skip

_CATEGORY = re.compile(r"(?P<archive>[a-z][a-z-]*)(\.[A-Za-z][A-Za-z-]*)?")


def is_arxiv_category(value: str) -> bool:
    """An archive name, or an archive, '.', and a subject class: cs, cs.LG, physics.optics."""
    match = _CATEGORY.fullmatch(value)
    return match is not None and match["archive"] in ARCHIVES
