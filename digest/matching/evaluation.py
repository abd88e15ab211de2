"""Offline evaluation of matching methods against labelled personas (tests/personas/*.json).

Used by the persona tests and `bench/matching.py --personas`; reads the demo trending pages
directly so it needs no database.
"""

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .scoring import PaperSet, TopicSpec, combine_interests, embed_papers
from .text import parse_interests

ROOT = Path(__file__).resolve().parents[2]
PERSONAS = ROOT / "tests" / "personas" / "personas.json"
# A third split written after the weights were tuned, by a different hand, and never tuned on.
FRESH_PERSONAS = ROOT / "tests" / "personas" / "personas_fresh.json"
_DATE_LINE = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}$")


def demo_papers(paths: Sequence[Path] | None = None) -> list[tuple[str, str]]:
    """(title, abstract) of the distinct papers on the demo trending pages, first seen first.

    The page is: a header, a date line ("Apr 3"), then title / abstract pairs separated by blank lines.
    """
    paths = paths or sorted((ROOT / "demo").glob("*.txt"))
    seen: dict[str, str] = {}
    for path in paths:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        start = next(i for i, line in enumerate(lines) if _DATE_LINE.match(line)) + 1
        body = lines[start:]
        for title, abstract in zip(body[0::2], body[1::2]):
            seen.setdefault(title, abstract)
    return list(seen.items())


def cached_embeddings(docs: Sequence[tuple[str, str]]) -> np.ndarray:
    """Paper vectors for docs, cached on disk by content (embedding 242 papers takes ~30 s on CPU)."""
    digest = hashlib.sha256(json.dumps(list(docs)).encode()).hexdigest()[:16]
    path = ROOT / "var" / "cache" / f"paper-vectors-{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = embed_papers(docs)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


@dataclass
class Scores:
    method: str
    split: str
    personas: int
    precision_at_5: float
    recall_at_10: float
    failures: list[str]
    # hits in the top 5 / 5, whatever the number of relevant papers (a persona with 3 can reach 0.6)
    plain_precision_at_5: float = 0.0

    def __str__(self):
        return (
            f"{self.method:8s} {self.split:8s} n={self.personas:2d} P@5={self.precision_at_5:.3f} "
            f"hits/5={self.plain_precision_at_5:.3f} R@10={self.recall_at_10:.3f}"
        )


def load_personas(split: str | None = None) -> list[dict]:
    """Personas of one split ("tune", "holdout", "fresh"); None: all of them."""
    personas = json.loads(PERSONAS.read_text(encoding="utf-8"))
    if FRESH_PERSONAS.exists():
        personas += json.loads(FRESH_PERSONAS.read_text(encoding="utf-8"))
    return [p for p in personas if split in (None, p["split"])]


def default_topic_specs() -> list[TopicSpec]:
    from .default_topics import DEFAULT_TOPICS

    return [TopicSpec(i, t["name"], t["description"], t["query"]) for i, t in enumerate(DEFAULT_TOPICS, 1)]


def evaluate(*, method: str, split: str | None = None, paperset: PaperSet | None = None) -> Scores:
    """Rank all demo papers for each persona's interests with `method`; P@5 and R@10 against the labels.

    P@5 counts relevant papers in the top 5 out of min(5, number of relevant papers), so a persona
    with only three relevant papers can still score 1.0.
    """
    docs = demo_papers()
    if paperset is None:
        embeddings = cached_embeddings(docs) if method != "lexical" else None
        paperset = PaperSet(docs=docs, topics=default_topic_specs(), method=method, embeddings=embeddings)
    titles = [t for t, _ in docs]
    index = {t: i for i, t in enumerate(titles)}
    p5, plain5, r10, failures = [], [], [], []
    personas = load_personas(split)
    for persona in personas:
        relevant = {index[t] for t in persona["relevant"]}
        scores = combine_interests(paperset.phrase_scores(parse_interests(persona["interests"])))
        order = np.argsort(-scores, kind="stable")
        hits5 = sum(int(i) in relevant for i in order[:5])
        p5.append(hits5 / min(5, len(relevant)))
        plain5.append(hits5 / 5)
        r10.append(sum(int(i) in relevant for i in order[:10]) / len(relevant))
        wrong = [titles[i][:50] for i in order[:5] if int(i) not in relevant]
        if wrong and hits5 < min(5, len(relevant)):
            failures.append(f"{persona['name']}: {wrong}")
    return Scores(
        method, split or "all", len(personas), float(np.mean(p5)), float(np.mean(r10)), failures, float(np.mean(plain5))
    )
