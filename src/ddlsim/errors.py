"""The project's exception hierarchy.

Every error a user can cause derives from :class:`DdlsimError`; the CLI prints its
message on one line and exits with status 1. Anything else is a bug and shows a traceback.
"""

import difflib
from collections.abc import Iterable, Mapping

#: Most known names :func:`unknown_name` lists when none is close (link ids run to thousands).
MAX_LISTED_NAMES = 40


class DdlsimError(Exception):
    """Base class for expected, user-facing errors."""


class ConfigError(DdlsimError, ValueError):
    """Bad input: names the field, the rule and the offending value."""


class BackendUnavailableError(DdlsimError, RuntimeError):
    """A requested compute backend (e.g. ``--device gpu``) cannot be used here."""


class SimulationError(DdlsimError, RuntimeError):
    """A simulation cannot proceed (e.g. an event budget was exceeded)."""


def _one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return text if text.isprintable() else " ".join(text.split())


def _listing(names: list[str]) -> str:
    """``names`` comma-separated, odd ones quoted, at most :data:`MAX_LISTED_NAMES` of them."""
    shown = [n if n.isprintable() and n else repr(n) for n in names[:MAX_LISTED_NAMES]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f", ... ({more} more)" if more > 0 else "")


def unknown_name(field: str, value: object, known: Iterable[str], what: str = "name", *,
                 aliases: Mapping[str, str] | None = None, cutoff: float = 0.6) -> ConfigError:
    """The one-line error for a name that is not one of ``known``.

    The message is ``"<field>: unknown <what> <value!r>; did you mean '<closest>'?"``, or
    ``"<field>: unknown <what> <value!r> (known: a, b, ...)"`` when no known name is close
    (nothing after the value when ``known`` is empty). The caller raises it.

    Args:
        field: the argument, option or path that held the value (e.g. ``"device"``).
        value: what was given; shown with ``repr``.
        known: the accepted names, in the order to list them.
        what: the kind of name, for the message (e.g. ``"link id"``).
        aliases: other accepted spellings, each mapped to the known name to suggest for it.
        cutoff: :func:`difflib.get_close_matches` similarity in [0, 1] a suggestion needs.

    Matching ignores case and surrounding whitespace of ``value``.
    """
    names = list(dict.fromkeys(str(k) for k in known))
    spellings: dict[str, str] = {}
    for name in names:
        spellings.setdefault(name.casefold(), name)
    for alias, name in (aliases or {}).items():
        spellings.setdefault(str(alias).casefold(), name)
    close = difflib.get_close_matches(str(value).strip().casefold(), list(spellings), n=1,
                                      cutoff=cutoff)
    if close:
        hint = f"; did you mean {spellings[close[0]]!r}?"
    elif names:
        hint = f" (known: {_listing(names)})"
    else:
        hint = ""
    return ConfigError(f"{_one_line(field)}: unknown {_one_line(what)} "
                       f"{_one_line(repr(value))}{hint}")
