"""Prompt moderation: alt-profanity-check's bundled model plus the staff blocklist.

What is checked where:

- The **profanity model** reads the prompt only. A negative prompt lists what the customer
  wants kept *out* of the image ("ugly, blurry, bad anatomy, nsfw" is the usual one), so
  naming something unwanted there is how people avoid it, and the model, which is trained
  on insults, would refuse many ordinary negative prompts.
- The **blocklist** reads both. Staff block terms that have no legitimate use anywhere in a
  request (slurs, terms used to request abuse material); a negative prompt is stored with
  the job and echoed back in the API and webhooks, so it must not carry them either. Staff
  should therefore block words, not topics that people legitimately steer away from
  ("nude" belongs to image moderation, not the blocklist).

Blocklist matching is whole-word and case-insensitive on a normalised spelling: accents and
zero-width characters are dropped, leetspeak is read as letters (0→o, 1→i/l, 3→e, 4→a,
5→s, 7→t, @→a, $→s, …), a word spelled out with separators ("b.a.d", "b a d") is joined,
and letters may be repeated ("baaad"). A word never matches inside a longer word, so "ass"
blocks neither "assessment" nor "class", and repeated letters only stretch a term, never
shrink it ("as" is not "ass").
"""

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import groupby

import numpy as np
from django.db import models

# The model's own `predict()` refuses at 0.5, which on image prompts refuses harmless text
# ("damn fine coffee" 0.52, "a devil mask" 0.57, "a butt of a rifle" 0.52). At 0.9 every
# ordinary prompt and tag we sampled passes (the highest, "ugly sweater" and "ugly
# duckling", score 0.897) while swear words and insults, which score 0.92-1.0, are refused.
# Topic words the model is unsure about ("naked" 0.71, "porn" 0.83) are left to the staff
# blocklist and to image moderation.
PROFANITY_THRESHOLD = 0.9

# Characters people type in place of letters. "1" and "|" stand for "i" or "l"; matching
# treats those two letters as one (see `_runs`), so one entry covers both readings.
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "6": "g",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "i",
        "+": "t",
        "€": "e",
    }
)
_LEET_SYMBOLS = "@$!|+€"
# Prompts are usually comma-separated tags or sentences.
_CLAUSE_BREAK = re.compile(r"[,;\n]+|[.!?]+(?:\s+|$)")
# A word is letters, digits and the symbols above; anything else separates words.
_WORD = re.compile(rf"(?:[^\W_]|[{re.escape(_LEET_SYMBOLS)}])+")


# A word as runs of one letter: "baaad" is [("b", 1), ("a", 3), ("d", 1)].
Runs = list[tuple[str, int]]


class PromptRefusalReason(models.TextChoices):
    BLOCKED_TERM = "blocked_term", "Blocked term"
    PROFANITY = "profanity", "Profanity"


@dataclass(frozen=True)
class PromptVerdict:
    allowed: bool
    reason: PromptRefusalReason | None
    # The staff's blocklist entries that matched, as staff wrote them.
    matched_terms: tuple[str, ...]
    # The profanity model's probability, 0-1, for the prompt or its worst clause.
    profanity_score: float


def check_prompt(
    text: str, *, negative_prompt: str = "", blocked_terms: Iterable[str] = ()
) -> PromptVerdict:
    """Judge a prompt before any credit is reserved.

    Refuse with `blocked_term` when a blocklist entry appears in the prompt or the negative
    prompt, else with `profanity` when the model scores the prompt at or above
    PROFANITY_THRESHOLD; `profanity_score` and `matched_terms` are always filled in.
    """
    matched = _matched_terms([_words(text), _words(negative_prompt)], tuple(blocked_terms))
    score = _profanity_score(text)
    if matched:
        reason = PromptRefusalReason.BLOCKED_TERM
    elif score >= PROFANITY_THRESHOLD:
        reason = PromptRefusalReason.PROFANITY
    else:
        reason = None
    return PromptVerdict(
        allowed=reason is None, reason=reason, matched_terms=matched, profanity_score=score
    )


def _profanity_score(text: str) -> float:
    """Score the whole prompt and each of its clauses, as written and de-leeted; keep the worst.

    The model averages over the words it is given, so one swear word at the end of a long
    tag list ("…, trending on artstation, shit") scores 0.67 as part of the whole prompt
    but 1.0 as its own clause. De-leeted readings catch "sh1t" and "f u c k".
    """
    pieces = [text, *(clause for clause in _CLAUSE_BREAK.split(text) if clause.strip())]
    readings = dict.fromkeys(
        reading
        for piece in pieces
        for reading in [piece, *(" ".join(word[0] for word in words) for words in _words(piece))]
    )
    return float(max(_profanity_model()(list(readings))))


@cache
def _profanity_model() -> Callable[[list[str]], np.ndarray]:
    """Return alt-profanity-check's model as a function from texts to profanity scores.

    It is the bundled model's own arithmetic, lifted out of scikit-learn, whose input checks
    cost about 1 ms per call on the submit path: the vectorizer's own analyzer, vocabulary
    and IDF weights (TF-IDF, L2-normalised), then the mean over the model's calibrated
    LinearSVCs of sigmoid(-(a * decision + b)). A test holds it equal to
    `profanity_check.predict_prob`. Importing profanity_check unpickles the model (about
    2 s), so it happens on first use rather than at import; the import lock makes it
    thread-safe.
    """
    from profanity_check import profanity_check

    vectorizer = profanity_check.vectorizer
    analyze, vocabulary, idf = vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_
    classifiers = profanity_check.model.calibrated_classifiers_
    weights = np.column_stack([fitted.estimator.coef_[0] for fitted in classifiers])
    intercepts = np.array([fitted.estimator.intercept_[0] for fitted in classifiers])
    slopes = np.array([fitted.calibrators[0].a_ for fitted in classifiers])
    offsets = np.array([fitted.calibrators[0].b_ for fitted in classifiers])

    def decision(text: str) -> np.ndarray:
        counts = Counter(vocabulary[token] for token in analyze(text) if token in vocabulary)
        if not counts:
            return intercepts
        columns = np.fromiter(counts, dtype=np.intp)
        tfidf = np.fromiter(counts.values(), dtype=np.float64) * idf[columns]
        return tfidf / np.linalg.norm(tfidf) @ weights[columns] + intercepts

    def predict(texts: list[str]) -> np.ndarray:
        decisions = np.array([decision(text) for text in texts])
        return (1 / (1 + np.exp(slopes * decisions + offsets))).mean(axis=1)

    return predict


def _words(text: str) -> list[list[tuple[str, ...]]]:
    """Return the readings of `text`: lists of words, each word a tuple of its spellings.

    The first reading keeps the words as typed; a second one, present only when the text
    spells a word out letter by letter ("b a d", "b.a.d"), joins those letters into a word.
    A word's spellings are its leetspeak read as letters and, when it starts or ends with a
    symbol ("ass!", "*bad*"), the same without those edge symbols.
    """
    tokens = _WORD.findall(_plain(text))
    as_typed = [_spellings(token) for token in tokens]
    joined = []
    for is_letter, run in groupby(tokens, key=lambda token: len(token) == 1):
        run = list(run)
        if is_letter and len(run) > 1:
            joined.append(_spellings("".join(run)))
        else:
            joined.extend(_spellings(token) for token in run)
    return [as_typed, joined] if joined != as_typed else [as_typed]


def _spellings(token: str) -> tuple[str, ...]:
    stripped = token.strip(_LEET_SYMBOLS)
    if stripped and stripped != token:
        return (_deleet(token), _deleet(stripped))
    return (_deleet(token),)


def _plain(text: str) -> str:
    """Casefold and drop accents and invisible characters ("Fück", "fu\u200bck" → "fuck")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(
        char for char in decomposed if unicodedata.category(char) not in {"Mn", "Cf"}
    ).casefold()


def _deleet(token: str) -> str:
    # Plain numbers stay numbers: "455 horsepower" is not "ass".
    if token.isdecimal():
        return token
    return token.translate(_LEET)


def _runs(word: str) -> Runs:
    """Return the word as runs of one letter, "l" read as "i" (the two readings of "1")."""
    return [(letter, len(list(run))) for letter, run in groupby(word.replace("l", "i"))]


def _stretches(word: Runs, term: Runs) -> bool:
    """True when `word` is `term` with some letters repeated ("baaad" stretches "bad")."""
    return len(word) == len(term) and all(
        letter == term_letter and count >= term_count
        for (letter, count), (term_letter, term_count) in zip(word, term, strict=True)
    )


def _matched_terms(
    readings_per_field: list[list[list[tuple[str, ...]]]], terms: tuple[str, ...]
) -> tuple[str, ...]:
    """Return the terms that appear as whole words (or whole word sequences) in any reading,
    in the blocklist's order."""
    index = _term_index(terms)
    matched = set()
    for readings in readings_per_field:
        for reading in readings:
            keyed = [[_runs(spelling) for spelling in word] for word in reading]
            for position, keys in enumerate(keyed):
                for key in keys:
                    for term, term_keys in index.get(_squeezed(key), ()):
                        if _matches_at(keyed, position, term_keys):
                            matched.add(term)
    return tuple(term for term in dict.fromkeys(terms) if term in matched)


@lru_cache(maxsize=16)
def _term_index(terms: tuple[str, ...]) -> dict[str, list[tuple[str, list[Runs]]]]:
    """Index the blocklist by its terms' first word with repeats squeezed out ("baaad" → "bad").

    The staff list is the same on every request, so it is normalised once per process and
    version of the list; a prompt then costs one lookup per word whatever the list's length.
    A term with no letters or digits has no words and is left out.
    """
    index: dict[str, list[tuple[str, list[Runs]]]] = {}
    for term in dict.fromkeys(terms):
        term_keys = [_runs(word[0]) for word in _words(term)[0]]
        if term_keys:
            index.setdefault(_squeezed(term_keys[0]), []).append((term, term_keys))
    return index


def _squeezed(key: Runs) -> str:
    return "".join(letter for letter, _count in key)


def _matches_at(reading: list[list[Runs]], position: int, term_keys: list[Runs]) -> bool:
    words = reading[position : position + len(term_keys)]
    return len(words) == len(term_keys) and all(
        any(_stretches(key, term_key) for key in keys)
        for keys, term_key in zip(words, term_keys, strict=True)
    )
