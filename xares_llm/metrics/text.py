"""Text normalisation applied to every prediction and reference before scoring, as the reference.

The reference system normalises both sides the same way, so a model is not punished for case,
spacing or ASCII punctuation. Full-width CJK punctuation that NFKC leaves alone (。、“”《》) is not
ASCII and therefore stays: on AISHELL-1 it counts as characters, exactly as in the reference.
"""

from __future__ import annotations

import re
import string
import unicodedata

_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)  # deletes !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
_WHITESPACE_RUN = re.compile(r"\s+")


def norm(text: str, remove_punctuation: bool = True) -> str:
    """NFKC, lower-case, '-' -> space, delete ASCII punctuation, collapse whitespace, strip.

    `remove_punctuation=False` keeps punctuation: mAP needs its ';' label separator (and labels such
    as "Motor_vehicle_(road)") intact.
    """
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    if remove_punctuation:
        text = text.translate(_ASCII_PUNCTUATION)
    return _WHITESPACE_RUN.sub(" ", text).strip()
