"""Stored phrase vectors for ranking: load them into the in-process cache, say which are missing (reads only).

Sending ranks inside semantic.vectors_only(), with the papers' stored vectors and these, so a
sending worker never loads the model. A `matching` worker stores them (services/classify.py:
when a subscriber saves interests, and at planning for any still missing).
"""

import hashlib
from collections.abc import Sequence

import numpy as np

from digest.models import PhraseVector

from . import semantic

LOOKUP_BATCH = 2000


class VectorsMissing(LookupError):
    """Ranking inside vectors_only() needs vectors nobody has stored yet (texts, or papers by id)."""

    def __init__(self, *, texts: Sequence[str] = (), paper_ids: Sequence[int] = ()):
        self.texts = list(texts)
        self.paper_ids = list(paper_ids)
        super().__init__(f"no stored vector for {len(self.texts)} phrase(s) and {len(self.paper_ids)} paper(s)")


def phrase_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def phrase_vector_decode(data: bytes | memoryview) -> np.ndarray | None:
    vector = np.frombuffer(bytes(data), dtype=np.float32)
    return vector if vector.shape == (semantic.DIM,) else None


def phrase_vectors_stored(*, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """{text: vector} for those of `texts` that have a stored vector."""
    keys = {phrase_key(t): t for t in dict.fromkeys(texts)}
    found: dict[str, np.ndarray] = {}
    key_list = list(keys)
    for start in range(0, len(key_list), LOOKUP_BATCH):
        batch = key_list[start : start + LOOKUP_BATCH]
        for key, data in PhraseVector.objects.filter(key__in=batch).values_list("key", "vector"):
            vector = phrase_vector_decode(data)
            if vector is not None:
                found[keys[key]] = vector
    return found


def phrase_vectors_load(*, texts: Sequence[str]) -> list[str]:
    """Fill the in-process phrase cache with the stored vectors of `texts`; returns those with none.

    Texts already cached cost no query: a phrase's vector never changes, so after the first
    chunk of the day a worker reads nothing here.
    """
    unknown = semantic.phrases_unknown(texts)
    if not unknown:
        return []
    found = phrase_vectors_stored(texts=unknown)
    semantic.phrases_remember(found, keep=texts)
    return [t for t in unknown if t not in found]


def phrase_vectors_require(*, texts: Sequence[str]) -> None:
    """As phrase_vectors_load; inside vectors_only() a text without a stored vector raises VectorsMissing.

    Outside it (previews, management commands, a matching worker) the missing ones are left to
    embed_phrases, which computes them in-process as before.
    """
    missing = phrase_vectors_load(texts=texts)
    if missing and not semantic.model_allowed():
        raise VectorsMissing(texts=missing)
