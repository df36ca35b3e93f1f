"""Which texts are worth a teacher's label: `--select random | diverse | uncertain`.

Each strategy gets the pool's texts and a budget and returns the chosen positions (sorted,
so labelling keeps input order):
- random:    a seeded uniform sample; the baseline the others must beat.
- diverse:   texts that cover the pool. Character 2-4-grams (any language, layout marks
             included) hashed and tf-idf weighted, reduced by truncated SVD (LSA), all with
             scikit-learn; then greedy k-center (the core-set selection of Sener & Savarese,
             2018): start from the most typical text, and take next the text farthest from
             everything chosen so far. Every kind of text the pool holds gets labels early,
             and a form that fills half the pool does not take half the budget. (k-means
             centres were tried first: they follow the mass, and gave a dominant form two
             of four picks while a small form got none.)
- uncertain: the student's own doubt. The student run answers (constrained, grounded,
             greedy) a random sample of candidates, and the texts whose answers have the
             lowest mean token log-probability (MNLP, Shen et al. 2017) are chosen.
"""

from __future__ import annotations

import random as random_module

from slmtune.errors import SlmtuneError

SVD_DIMENSIONS = 128
CANDIDATES_PER_LABEL = 4  # uncertain: texts the student answers per label bought


def select(
    strategy: str,
    texts: list[str],
    budget: int,
    seed: int = 0,
    student: str | None = None,
    candidates: int | None = None,
    batch_size: int = 8,
) -> list[int]:
    """Positions of the chosen texts, ascending; the whole pool when it fits the budget."""
    if budget >= len(texts):
        return list(range(len(texts)))
    if strategy == "random":
        return sorted(random_module.Random(seed).sample(range(len(texts)), budget))
    if strategy == "diverse":
        return _diverse(texts, budget, seed)
    if strategy == "uncertain":
        if student is None:
            raise SlmtuneError("--select uncertain needs --student RUN (the model to ask)")
        pool = candidates or CANDIDATES_PER_LABEL * budget
        return _uncertain(texts, budget, seed, student, pool, batch_size)
    raise SlmtuneError(f"--select {strategy}: use random, diverse or uncertain")


def _diverse(texts: list[str], budget: int, seed: int) -> list[int]:
    import numpy as np

    points = _embed(texts, seed)
    first = int(np.argmin(np.linalg.norm(points - points.mean(0), axis=1)))  # the most typical
    chosen = [first]
    distance = 1 - points @ points[first]  # cosine distance to the nearest chosen text
    while len(chosen) < budget:
        far = int(np.argmax(distance))
        chosen.append(far)
        distance = np.minimum(distance, 1 - points @ points[far])
        distance[chosen] = -np.inf
    return sorted(chosen)


def _embed(texts: list[str], seed: int):
    """Unit vectors for the texts: character 2-4-grams, hashed, tf-idf, LSA."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.preprocessing import normalize

    counts = HashingVectorizer(
        analyzer="char", ngram_range=(2, 4), n_features=2**18, alternate_sign=False, norm=None
    ).transform(texts)
    weighted = TfidfTransformer(sublinear_tf=True).fit_transform(counts)
    dims = min(SVD_DIMENSIONS, weighted.shape[0] - 1, weighted.shape[1] - 1)
    return normalize(TruncatedSVD(dims, random_state=seed).fit_transform(weighted))


def _uncertain(
    texts: list[str], budget: int, seed: int, student: str, pool: int, batch_size: int
) -> list[int]:
    from slmtune.config import DecodeConfig
    from slmtune.infer.driver import answer_all, requests_for
    from slmtune.run import open_run

    candidates = select("random", texts, min(pool, len(texts)), seed)
    opened = open_run(student)
    requests = requests_for(opened, [texts[i] for i in candidates], DecodeConfig())
    for request in requests:
        request.logprobs = True
    answers = answer_all(opened, requests, batch_size)
    doubt = {}
    for position, answer in zip(candidates, answers, strict=True):
        logprobs = answer.logprobs or []
        confident = answer.finished and logprobs
        doubt[position] = -sum(logprobs) / len(logprobs) if confident else float("inf")
    ranked = sorted(candidates, key=lambda i: (-doubt[i], i))
    return sorted(ranked[:budget])
