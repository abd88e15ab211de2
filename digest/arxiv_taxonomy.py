"""arXiv's category names: an archive (cs, hep-th, ...) optionally with a subject class (cs.LG, cond-mat.mes-hall).

Kept free of Django imports: settings.py checks ARXIV_CATEGORIES with it at start.
"""

# The archives of arXiv's category taxonomy (arxiv.org/category_taxonomy). A regex alone took
# any lower-case word, so `--category foo` queried arXiv for a category that does not exist
# and quietly fetched nothing.
ARCHIVES = frozenset(
    {
        "astro-ph", "cond-mat", "cs", "econ", "eess", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th",
        "math", "math-ph", "nlin", "nucl-ex", "nucl-th", "physics", "q-bio", "q-fin", "quant-ph", "stat",
    }
)  # fmt: skip

# Each archive's subject classes (arxiv.org/category_taxonomy), the old aliases the API still
# answers to included (cs.NA, math.IT, math.MP, stat.TH, eess.SY, q-fin.EC ...). Checking the
# archive alone let `cs.FOO` through, and arXiv quietly returned nothing for it every day.
# Archives not listed (gr-qc, hep-th, quant-ph ...) have no subject classes.
# Hand-kept: no maintained package ships the taxonomy; it changes a few times a decade.
SUBJECT_CLASSES = {
    "astro-ph": "CO EP GA HE IM SR",
    "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
    "cs": "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA NE NI OH OS PF PL "
          "RO SC SD SE SI SY",
    "econ": "EM GN TH",
    "eess": "AS IV SP SY",
    "math": "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA RA RT SG SP ST",
    "nlin": "AO CD CG PS SI",
    "physics": "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an ed-ph flu-dyn gen-ph "
               "geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
    "q-bio": "BM CB GN MN NC OT PE QM SC TO",
    "q-fin": "CP EC GN MF PM PR RM ST TR",
    "stat": "AP CO ME ML OT TH",
}  # fmt: skip
CATEGORIES = frozenset(ARCHIVES) | {f"{archive}.{cls}" for archive, classes in SUBJECT_CLASSES.items() for cls in classes.split()}
_BY_LOWER = {category.lower(): category for category in CATEGORIES}


def is_arxiv_category(value: str) -> bool:
    """An archive name, or an archive, '.', and one of its subject classes: cs, cs.LG, physics.optics."""
    return value in CATEGORIES


def unknown_described(values: list[str]) -> str:
    """The values that are no arXiv category, for an error message; with the right case where that is all that is wrong."""
    return ", ".join(
        f"{value!r} (did you mean {_BY_LOWER[value.lower()]}?)" if value.lower() in _BY_LOWER else repr(value)
        for value in values
        if not is_arxiv_category(value)
    )
