"""Every sound file the line can ask Asterisk to play: what `meterline prompts render` makes.

Prompts are cut into pieces by `ivr.agi.sounds`; this lists the pieces ahead of time: every
prompt's literal text, every word `NumberWords` can produce in each number form the catalogue
uses (integers, thousands, millions, and decimals to thousandths: a register's range), the
words of the free texts the flow inserts (addresses, meter places and kinds, serial characters,
operator hours) taken from the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from callflows.prompts import KIND_WORDS, hour_text, street_of
from ivr.agi.sounds import Piece, literal_pieces, param_words, placeholder_specs
from ivr.prompts import Catalogue

# Serial numbers may end in letters: each is read on its own.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
# Said by the flow as text parameters where nothing better is known.
FIXED_TEXTS = ("адрес не указан",)


def sample_numbers() -> Iterable[int | Decimal]:
    """Numbers whose words, together, are every word a reading up to 99 999 999.999 needs."""
    yield from range(0, 1001)
    for base in (1000, 1_000_000):
        for k in (*range(1, 101), *range(100, 1000, 100), 121, 122, 125, 999):
            yield k * base
    for places in (1, 2, 3):
        for whole in (0, 1, 2, 5, 21):
            for fraction in range(1, 10**places):
                if places < 3 or fraction % 7 == 0 or fraction < 30 or fraction % 100 in (1, 2, 5):
                    yield Decimal(whole) + Decimal(fraction).scaleb(-places)


def number_words(catalogue: Catalogue) -> set[str]:
    """The word files that read any number in any form the catalogue uses."""
    words: set[str] = set()
    for spec in placeholder_specs(catalogue):
        tokens = spec.split("|")[0].split("-")
        ordinal = "ord" in tokens
        units = list(catalogue.units.values()) if "u" in tokens else [None]
        for number in sample_numbers():
            if ordinal and (isinstance(number, Decimal) or number > 100):
                continue  # ordinals are days and hours here
            for unit in units:
                words.update(param_words(number, spec, catalogue, unit))
    return words


def text_pieces(
    catalogue: Catalogue,
    addresses: Iterable[str],
    places: Iterable[str],
    operator_hours: Iterable[tuple[int, int]],
) -> list[Piece]:
    """Every piece the line can need, each once, in a stable order."""
    pieces: dict[str, Piece] = {}
    for key in sorted(catalogue.prompts):
        for piece in literal_pieces(catalogue, key):
            pieces.setdefault(piece.name, piece)
    words = number_words(catalogue)
    texts = [*KIND_WORDS.values(), *FIXED_TEXTS, *LETTERS, *places]
    texts += [street_of(a) for a in addresses]
    texts += [str(hour_text(h, m)) for h, m in operator_hours]
    for text in texts:
        words.update(param_words(text, "", catalogue))
    for word in sorted(words):
        piece = Piece(word)
        pieces.setdefault(piece.name, piece)
    return list(pieces.values())
