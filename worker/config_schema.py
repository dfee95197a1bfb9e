"""How a setting is declared, parsed, read and documented; the settings are in config.py.

:func:`setting` declares one field of :class:`traderctl.worker.config.Settings` together
with its :class:`Setting` (variable, default text, :class:`Parser`, unit, meaning, earlier
names). :func:`read` finds a setting's text in the environment, warning about earlier
names; :func:`render_markdown` turns the declarations into the README's table.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast, overload

from traderctl.worker.intervals import INTERVALS

__all__ = [
    "CRON",
    "DIRECTORY",
    "EXISTING_FILE",
    "HTTP_URL",
    "KLINE_INTERVALS",
    "TEXT",
    "UPPER_NAMES",
    "Parser",
    "Setting",
    "choice",
    "declared",
    "integer",
    "read",
    "render_markdown",
    "setting",
]

# Warnings about earlier names read as coming from the settings module itself.
log = logging.getLogger("traderctl.worker.config")

T = TypeVar("T")


# -- parsers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Parser(Generic[T]):
    """Turns a variable's text into its value; ``convert`` raises ValueError saying why not.

    ``allowed`` describes the accepted values; it ends every error message and fills the
    README's "Allowed" column.
    """

    allowed: str
    convert: Callable[[str], T]


def integer(minimum: int = 0, maximum: int | None = None) -> Parser[int]:
    """A whole number within ``[minimum, maximum]``."""
    allowed = (
        f"a whole number from {minimum} to {maximum}"
        if maximum is not None
        else f"a whole number ≥ {minimum}"
    )

    def convert(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError("out of range")
        return value

    return Parser(allowed, convert)


def _text(raw: str) -> str:
    return raw.strip()


TEXT: Parser[str] = Parser("any text", _text)


def _url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("not an http(s) URL")
    return value


HTTP_URL: Parser[str] = Parser("an http:// or https:// URL", _url)


def _directory(raw: str) -> Path:
    return Path(raw.strip()).absolute()


DIRECTORY: Parser[Path] = Parser("a directory path (created if missing)", _directory)


def _existing_file(raw: str) -> Path:
    path = Path(raw.strip())
    if not path.is_file():
        raise ValueError("not a readable file")
    return path


EXISTING_FILE: Parser[Path] = Parser("the path of an existing file", _existing_file)


def choice(*options: str) -> Parser[str]:
    """One of ``options`` (case-insensitive)."""

    def convert(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError("not one of the choices")
        return value

    return Parser(" or ".join(f"`{o}`" for o in options), convert)


def _cron(raw: str) -> str:
    value = raw.strip()
    if len(value.split()) not in (5, 6):
        raise ValueError("not a cron schedule")
    return value


CRON: Parser[str] = Parser("a cron schedule: 5 fields, or 6 with seconds last", _cron)


def _upper_names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().upper() for part in raw.split(",") if part.strip())


UPPER_NAMES: Parser[tuple[str, ...]] = Parser(
    "comma-separated asset names; empty for none", _upper_names
)


def _intervals(raw: str) -> tuple[str, ...]:
    wanted = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = sorted(wanted - set(INTERVALS))
    if unknown:
        raise ValueError(f"unknown interval(s) {', '.join(unknown)}")
    if not wanted:
        raise ValueError("no interval")
    return tuple(i for i in INTERVALS if i in wanted)


KLINE_INTERVALS: Parser[tuple[str, ...]] = Parser(
    f"a comma-separated subset of {','.join(INTERVALS)}", _intervals
)


# -- declarations --------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Setting(Generic[T]):
    """One setting: its variable, default text, parser, unit, meaning and earlier names.

    ``default`` is the text the variable would hold (None: unset, and ``shown`` says what
    that means). ``blank_is_unset`` makes an empty variable mean the default; settings
    where empty is meaningful (an empty list) turn it off.
    """

    env: str
    default: str | None
    parser: Parser[T]
    doc: str
    unit: str = ""
    shown: str | None = None
    old: tuple[str, ...] = ()
    blank_is_unset: bool = True
    attr: str = ""

    def default_value(self) -> T | None:
        """The typed default: the parsed default text, or None when unset by default."""
        return None if self.default is None else self.parser.convert(self.default)

    def option_help(self) -> str:
        """``(env VAR, default …)`` for the --help of a CLI option mirroring this setting.

        Parentheses, not brackets: typer's rich help would take ``[…]`` for markup.
        """
        unit = f" {self.unit}" if self.unit else ""
        default = self.default if self.default is not None else "unset"
        return f"(env {self.env}, default {default}{unit})"

    def default_text(self) -> str:
        """The default as the README shows it."""
        if self.shown is not None:
            return self.shown
        return f"`{self.default}`" if self.default is not None else "(unset)"


_META = "traderctl.setting"


@overload
def setting(
    env: str,
    default: str,
    parser: Parser[T],
    doc: str,
    *,
    unit: str = "",
    shown: str | None = None,
    old: tuple[str, ...] = (),
    blank_is_unset: bool = True,
) -> T: ...


@overload
def setting(
    env: str,
    default: None,
    parser: Parser[T],
    doc: str,
    *,
    unit: str = "",
    shown: str | None = None,
    old: tuple[str, ...] = (),
    blank_is_unset: bool = True,
) -> T | None: ...


def setting(
    env: str,
    default: str | None,
    parser: Parser[T],
    doc: str,
    *,
    unit: str = "",
    shown: str | None = None,
    old: tuple[str, ...] = (),
    blank_is_unset: bool = True,
) -> T | None:
    """Declare a :class:`Settings` field (a dataclass field carrying its :class:`Setting`)."""
    spec = Setting(
        env=env,
        default=default,
        parser=parser,
        doc=doc,
        unit=unit,
        shown=shown,
        old=old,
        blank_is_unset=blank_is_unset,
    )
    return cast(T, field(default_factory=spec.default_value, metadata={_META: spec}))


def declared(settings_class: type) -> Iterator[Setting[Any]]:
    """The :class:`Setting` of every field of ``settings_class``, in declaration order."""
    for f in dataclasses.fields(settings_class):
        spec: Setting[Any] = f.metadata[_META]
        yield dataclasses.replace(spec, attr=f.name)


_warned: set[str] = set()


def _warn_once(name: str, message: str) -> None:
    if name not in _warned:
        _warned.add(name)
        log.warning("%s", message)


def read(env: Mapping[str, str], spec: Setting[Any]) -> tuple[str, str] | None:
    """(variable, text) of the first of the current and earlier names that is set."""
    found: tuple[str, str] | None = None
    for name in (spec.env, *spec.old):
        raw = env.get(name)
        if raw is None or (spec.blank_is_unset and not raw.strip()):
            continue
        if name != spec.env:
            if found is None:
                _warn_once(name, f"{name} is deprecated; rename it to {spec.env}.")
            else:
                _warn_once(name, f"{name} is ignored because {spec.env} is set; remove {name}.")
        if found is None:
            found = (name, raw)
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(specs: Iterable[Setting[Any]]) -> str:
    """The README's configuration table and the table of earlier names, as Markdown."""
    specs = list(specs)
    lines = [
        "| Variable | Default | Unit | Allowed | Meaning |",
        "|---|---|---|---|---|",
    ]
    for s in specs:
        cells = (f"`{s.env}`", s.default_text(), s.unit or "-", s.parser.allowed, s.doc)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    renamed = [(old, s.env) for s in specs for old in s.old]
    if renamed:
        lines += [
            "",
            "Earlier names still work and log a warning naming the new one:",
            "",
            "| Earlier name | Now |",
            "|---|---|",
            *(f"| `{old}` | `{new}` |" for old, new in renamed),
        ]
    return "\n".join(lines) + "\n"
