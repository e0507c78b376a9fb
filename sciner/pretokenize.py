"""Raw text -> sentences of word tokens with character offsets.

Matches the gold data's tokenization (spaCy-like): punctuation is split off words, while
intra-word hyphens, decimals (``0.01``), dotted abbreviations (``e.g.``, ``al.``) and ``p=0.05``
stay whole; possessive ``'s`` and ``n't`` are separate tokens. Every token satisfies
``text[token.start:token.end] == token.text``.
"""

from __future__ import annotations

import re

from sciner.records import Token

_CHUNK = re.compile(r"\S+")
_PREFIX_CHARS = set("\"'“”‘’«»([{<`*•§¶")
_SUFFIX_CHARS = set("\"'“”‘’«»)]}>,;:!?`*")
_CLITICS = ("'s", "’s", "'S", "’S", "n't", "n’t", "'re", "’re", "'ve", "’ve", "'ll", "’ll", "'d", "’d", "'m", "’m")
_ABBREVIATIONS = frozenset(
    "al. e.g. i.e. etc. vs. cf. fig. figs. eq. eqs. sec. secs. tab. resp. approx. no. nos. dr. mr. ms. "
    "prof. et. ch. vol. pp. p. ca. incl. esp. viz. w.r.t. a.k.a. jan. feb. mar. apr. jun. jul. aug. "
    "sep. sept. oct. nov. dec. st. inc. ltd. co. u.s. u.k.".split()
)
_DOTTED = re.compile(r"^(?:[A-Za-z]\.){2,}$")  # e.g. i.e. U.S.
_ELLIPSIS = re.compile(r"^\.{2,}$|^…$")
_SENT_END = frozenset({".", "?", "!", "...", "…"})
_CLOSERS = frozenset({")", "]", "}", '"', "'", "”", "’", "»"})
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")


def _split_chunk(chunk: str, offset: int) -> list[Token]:
    """Peel punctuation off one whitespace-free chunk; the core keeps what is left."""
    prefixes: list[Token] = []
    suffixes: list[Token] = []
    start, end = 0, len(chunk)
    changed = True
    while changed and start < end:
        changed = False
        if chunk[start] in _PREFIX_CHARS and end - start > 1:
            prefixes.append(Token(chunk[start], offset + start, offset + start + 1))
            start += 1
            changed = True
        word = chunk[start:end]
        if end - start <= 1:
            break
        last = chunk[end - 1]
        if last in _SUFFIX_CHARS:
            suffixes.append(Token(last, offset + end - 1, offset + end))
            end -= 1
            changed = True
            continue
        if last == "%" and end - start > 1:
            suffixes.append(Token("%", offset + end - 1, offset + end))
            end -= 1
            changed = True
            continue
        if last == "." or last == "…":
            dots = len(word) - len(word.rstrip("."))
            if word.endswith("…") or dots >= 2:
                n = 1 if word.endswith("…") else dots
                if n < len(word):
                    suffixes.append(Token(chunk[end - n : end], offset + end - n, offset + end))
                    end -= n
                    changed = True
                    continue
            elif not (word.lower() in _ABBREVIATIONS or _DOTTED.match(word)):
                suffixes.append(Token(".", offset + end - 1, offset + end))
                end -= 1
                changed = True
                continue
        for clitic in _CLITICS:
            if word.endswith(clitic) and len(word) > len(clitic):
                n = len(clitic)
                suffixes.append(Token(chunk[end - n : end], offset + end - n, offset + end))
                end -= n
                changed = True
                break
    core = [Token(chunk[start:end], offset + start, offset + end)] if start < end else []
    return prefixes + core + suffixes[::-1]


def tokenize(text: str) -> list[Token]:
    """Word tokens of ``text`` with character offsets, in order."""
    tokens: list[Token] = []
    for match in _CHUNK.finditer(text):
        tokens.extend(_split_chunk(match.group(), match.start()))
    return tokens


def _starts_sentence(token: Token) -> bool:
    first = token.text[0]
    return first.isupper() or first.isdigit() or first in "([\"“‘'"


def split_sentences(text: str, tokens: list[Token] | None = None) -> list[list[Token]]:
    """Group tokens into sentences.

    A sentence ends after ``.`` ``?`` ``!`` (and any closing brackets or quotes) when the next
    token starts a sentence, and always at a paragraph break (a blank line).
    """
    tokens = tokenize(text) if tokens is None else tokens
    breaks = {m.start() for m in _PARAGRAPH.finditer(text)}
    break_points = sorted(breaks)
    sentences: list[list[Token]] = []
    current: list[Token] = []
    bp = 0
    for i, token in enumerate(tokens):
        while bp < len(break_points) and break_points[bp] < token.start:
            if current and break_points[bp] >= current[-1].end:
                sentences.append(current)
                current = []
            bp += 1
        current.append(token)
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is None:
            break
        if token.text in _SENT_END or (token.text in _CLOSERS and _ends_with_terminal(current)):
            if nxt.text in _CLOSERS:
                continue
            if _starts_sentence(nxt):
                sentences.append(current)
                current = []
    if current:
        sentences.append(current)
    return sentences


def _ends_with_terminal(current: list[Token]) -> bool:
    for token in reversed(current):
        if token.text in _CLOSERS:
            continue
        return token.text in _SENT_END
    return False
