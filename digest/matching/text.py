"""Tokens, stems and phrases shared by the lexical matcher, topic queries and interests."""

import re
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

# A short list on purpose: words like "learning" or "model" carry meaning in phrases
# ("robot learning") and BM25's idf already discounts them when they are everywhere.
STOPWORDS = frozenset(
    """a an and are as at be been but by can do does for from has have how in into is it its
    of on or our so such that the their then there these this those to towards toward via
    was we were what when which while who why will with without your you i my me""".split()
)

_WORD = re.compile(r"[a-z0-9]+(?:[+#][a-z0-9+#]*)?")
_stemmer = snowballstemmer.stemmer("english")

# Snowball over-conflates a few words that mean different things in ML titles
# ("optimizer" is not "optimization", "optimal" neither).
STEM_EXCEPTIONS = {"optimizer": "optimizer", "optimizers": "optimizer", "optimal": "optimal", "optimality": "optimal"}
# ...and under-conflates a noun in -y with its adjective in -ic(al): "theory" is "theori" but
# "theoretical" "theoret", so "learning theory" missed "a theoretical analysis of learning".
# Only pairs that mean the same subject in papers ("analytic" is not "analysis", "synthetic" not
# "synthesis", "probabilistic" not "probability" bounds).
_DERIVED = {
    "theori": "theoretical theoretically",
    "geometri": "geometric geometrical geometrically",
    "economi": "economic economics economical",
    "symmetri": "symmetric symmetrical",
    "medicin": "medical medically",
    "chemistri": "chemical",
    "histori": "historical",
    "anatomi": "anatomical",
    "strategi": "strategic",
}
STEM_EXCEPTIONS |= {word: root for root, forms in _DERIVED.items() for word in forms.split()}


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return STEM_EXCEPTIONS.get(word) or _stemmer.stemWord(word)


def words(text: str) -> list[str]:
    """Lower-cased word tokens; hyphens and punctuation split words ("fine-tuning" -> fine, tuning)."""
    return _WORD.findall(text.casefold())


def tokens(text: str) -> list[str]:
    """Stemmed content tokens, in order."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


# A one-character token ("b", "x") is in too many titles by accident (Appendix B, x-axis) to
# mean an interest; two already carry one ("rl", "3d", "go", "c++" keeps its pluses).
MIN_TOKEN_CHARS = 2


def can_match(text: str) -> bool:
    """Whether a phrase has a content token long enough to match on: "the, and, of" or "a, b"
    have none and would only ever bring trending papers."""
    return any(len(tok) >= MIN_TOKEN_CHARS for tok in tokens(text))


def bigrams(toks: list[str]) -> list[str]:
    return [f"{a}_{b}" for a, b in zip(toks, toks[1:])]


def contains_phrase(doc_tokens: str, phrase_tokens: list[str]) -> bool:
    """Whether the stemmed tokens appear contiguously; doc_tokens is ' '.join(tokens) padded with spaces."""
    return f" {' '.join(phrase_tokens)} " in doc_tokens


@dataclass(frozen=True)
class Phrase:
    """One interest or topic query term: the words as typed, and whether they were quoted."""

    text: str
    quoted: bool = False

    @property
    def key(self) -> str:
        return f'"{self.text.casefold()}"' if self.quoted else self.text.casefold()


_QUOTED = re.compile(r'"([^"]*)"')
# Phones and word processors type curly quotes ("smart punctuation" on iOS and macOS): “world
# models” must be the quoted phrase its writer meant, and I’m the I'm the lead-in knows.
_STRAIGHT = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "＂": '"',
                           "‘": "'", "’": "'", "‚": "'", "‛": "'"})  # fmt: skip


def straight_quotes(text: str) -> str:
    return (text or "").translate(_STRAIGHT)


def _open_quote(text: str) -> tuple[str, str]:
    """(text before a quote left open, the words after it): with its pairs already taken out, a
    quote still in `text` quotes the rest, as `robot, "world models` meant; (text, "") without one."""
    rest, _, opened = text.partition('"')
    return rest, " ".join(opened.replace('"', " ").split())


def unclosed_quote(text: str) -> bool:
    """Whether a double quote is left open (an odd number of them, curly ones included)."""
    return straight_quotes(text).count('"') % 2 == 1
# What people put before their interests when they write a sentence: "I'm interested in ...".
# Its words are in no paper, so they would only dilute the phrase (lexically, and its embedding).
_LEAD_IN = re.compile(
    r"^(?:(?:i\s*(?:'?m|am)\s+)?(?:mostly\s+|mainly\s+|very\s+)?interested\s+in|i\s+(?:work|research|focus)\s+on"
    r"|(?:papers|anything|research|work)\s+(?:on|about|in))\s*:?\s+|^(?:interests?|topics?)\s*:\s*",
    re.IGNORECASE,
)
# "medical imaging and clinical NLP" is two interests, "vision and language" or "Chinese and Thai
# language models" one: split on "and" / "&" only where every part has two words or more.
_AND = re.compile(r"\s+(?:and|&)\s+", re.IGNORECASE)


def _pieces(rest: str) -> list[str]:
    rest = _LEAD_IN.sub("", rest.strip())
    pieces = [p for part in re.split(r"\s+/\s+", rest) for p in [part.strip()] if p]
    out = []
    for piece in pieces:
        parts = _AND.split(piece)
        out += parts if len(parts) > 1 and all(len(words(p)) >= 2 for p in parts) else [piece]
    return out


def parse_interests(text: str) -> list[Phrase]:
    """Split free-text interests on commas, semicolons and new lines; "quoted" pieces must match
    as phrases.

    `robot learning, "world models"` -> [robot learning, "world models" (quoted)]. Typed as a
    sentence, `I'm interested in medical imaging and clinical NLP` -> [medical imaging, clinical
    NLP]; " / " separates too. Duplicates and pieces with no word in them are dropped, order is kept.
    """
    out: list[Phrase] = []
    seen: set[str] = set()
    for piece in re.split(r"[,;\n]", straight_quotes(text)):
        quoted = [q.strip() for q in _QUOTED.findall(piece) if q.strip()]
        rest, opened = _open_quote(_QUOTED.sub(" ", piece))
        quoted += [opened] if opened else []
        rest = rest.strip().strip("'").strip()
        phrases = [Phrase(q, True) for q in quoted]
        for part in _pieces(rest) if rest else []:
            part = part.strip().strip("'.").strip()
            if part and words(part):
                phrases.append(Phrase(" ".join(part.split()), False))
        for phrase in phrases:
            if words(phrase.text) and phrase.key not in seen:
                seen.add(phrase.key)
                out.append(phrase)
    return out


def parse_query(text: str) -> list[Phrase]:
    """A topic query: comma-separated keywords and "quoted phrases" (unquoted words are one term each
    when there are no commas, so `robot manipulation "robot learning"` also works)."""
    text = straight_quotes(text)
    if "," in text or ";" in text:
        return parse_interests(text)
    quoted = [Phrase(q.strip(), True) for q in _QUOTED.findall(text) if q.strip()]
    rest, opened = _open_quote(_QUOTED.sub(" ", text))
    quoted += [Phrase(opened, True)] if opened else []
    rest = [Phrase(w) for w in rest.split() if words(w)]
    return parse_interests(", ".join(f'"{p.text}"' if p.quoted else p.text for p in quoted + rest))
