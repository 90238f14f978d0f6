"""Text from files and servers, made inert for people to read: control characters shown as escapes.

Model ids, custom_ids, user ids, tags, error messages and completions come from other teams' files and
from servers. Shown as they are, an ESC sequence restyles or clears a terminal, a BEL or OSC retitles it,
and a bidi override (U+202E) reorders what a reader sees, in a terminal and in a browser alike
("safe\u202egnp.exe" reads "safeexe.png"). So everything printed (costlens.cli.tables) and everything on
the HTML report (costlens.report.html) goes through :func:`escape_controls`: every non-printable character
becomes a visible Python-style escape (ESC -> ``\x1b``). The data itself is stored and exported verbatim.

A shared leaf module: it imports nothing of costlens, so every layer may use it.
"""

from __future__ import annotations

__all__ = ["escape_controls"]

_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape_controls(text: str) -> str:
    """``text`` with every non-printable character shown as a Python-style escape (ESC -> ``\\x1b``)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)
