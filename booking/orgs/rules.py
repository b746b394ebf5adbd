"""Pure organisation rules: when two names are the same name."""

from __future__ import annotations

import hashlib
import unicodedata


def comparable_name(name: str) -> str:
    """A name as compared with others: Unicode compatibility forms folded (full-width ＡＢＣ is
    ABC), case folded (ß is ss), invisible format characters (zero-width spaces, joiners)
    dropped and runs of spaces made one. Done in Python, not with the database's lower(): SQLite's
    lowers only ASCII, so the same look-up found different organisations on the two databases."""
    text = unicodedata.normalize("NFKC", name)
    text = unicodedata.normalize("NFKC", text.casefold())
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return " ".join(text.split())


def name_key(name: str) -> str:
    """What an organisation's name_key column holds (unique): a digest of its comparable name,
    of one length however much NFKC lengthens a name (one character can become eighteen)."""
    return "sha256:" + hashlib.sha256(comparable_name(name).encode()).hexdigest()
