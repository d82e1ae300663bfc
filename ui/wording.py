"""Words a class reads: counts with the right plural, and data set names without the app's internal ids.

An upload's runs carry `upload:NAME@HASH` (the hash keeps two files of one name apart); a page shows "your upload
NAME" instead, and a built-in set by its short name.
"""

from __future__ import annotations


def count(n: int, word: str, plural: str | None = None) -> str:
    """'1 image', '2 images', '0 images'; `plural` for words that do not just take an s ('1 class')."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def data_label(name: str | None) -> str:
    """'digits' for builtin:digits, 'your upload pets.zip' for upload:pets.zip@1a2b3c4d, '?' for none."""
    if not name:
        return "?"
    kind, _, rest = str(name).partition(":")
    if kind == "builtin" and rest:
        return rest
    if kind == "upload" and rest:
        return f"your upload {rest.rsplit('@', 1)[0]}"
    return str(name)


#: The training budget's choices, short enough for a half-width select box at 800 px; the caption below says more.
BUDGET_LABELS = {"auto": "auto", "fixed": "same short budget", "converge": "to convergence"}
BUDGET_CAPTIONS = {
    "auto": "Fine-tuning and from-scratch runs train to convergence (at least {steps} optimizer steps, the best "
            "epoch on validation kept); a frozen head's fit converges by itself.",
    "fixed": "Every arm trains exactly the epochs set: a short budget can make one arm look better or worse than "
             "it is.",
    "converge": "Every arm trains to convergence: at least {steps} optimizer steps, the best epoch on validation "
                "kept.",
}
