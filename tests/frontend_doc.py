"""Reading docs/frontend.md as test data: its examples, expected results and contract tables.

The document is the frontend's contract, so the test runs what it shows instead of
restating it. Three kinds of HTML comment mark what the test reads:

* ``<!-- fixture -->`` before the ``sql`` block that creates the example data;
* ``<!-- test: NAME [as=A|B] [role=anon] [after=X,Y] [index=IDX] -->`` before an optional
  ``js`` block, the ``sql`` block it translates to, and a ``text`` block with the expected
  result in psql's output format (aligned table, ``-[ RECORD n ]`` records, a command tag
  such as ``UPDATE 0``, or ``ERROR:  SQLSTATE: message`` with ``DETAIL``/``HINT`` lines);
* ``<!-- contract: NAME -->`` before a markdown table or a fenced block.

Any ``sql`` block without a marker is an error: an example nobody runs could be wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "frontend.md"

_MARKER = re.compile(r"^<!--\s*(fixture|test|contract)\s*(?::\s*(.*?))?\s*-->\s*$")
_FENCE = re.compile(r"^```(\w*)\s*$")
_TAG = re.compile(r"^(INSERT \d+ \d+|UPDATE \d+|DELETE \d+)$")
_ERROR = re.compile(r"^ERROR:  ([0-9A-Z]{5}): (.*)$")
_FOOTER = re.compile(r"^\((\d+) rows?\)$")


class DocError(ValueError):
    """docs/frontend.md does not follow the structure this module reads."""


@dataclass(frozen=True)
class Fence:
    lang: str
    body: str
    line: int


@dataclass(frozen=True)
class Expected:
    """What a statement should produce: an error, a command tag, or rows as text."""

    sqlstate: str | None = None
    message: str | None = None
    detail: str | None = None
    hint: str | None = None
    tag: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()

    @property
    def is_error(self) -> bool:
        return self.sqlstate is not None


@dataclass(frozen=True)
class Example:
    name: str
    line: int
    actor: str
    after: tuple[str, ...]
    index: str | None
    js: str | None
    sql: str
    expected: Expected


@dataclass
class Document:
    fixture: str = ""
    examples: dict[str, Example] = field(default_factory=dict)
    contracts: dict[str, list[list[str]] | Fence] = field(default_factory=dict)
    unmarked_sql: list[int] = field(default_factory=list)
    text: str = ""


def parse_expected(text: str, *, where: str) -> Expected:
    """Parse psql-style output: error, command tag, aligned table or expanded records."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    if not lines:
        raise DocError(f"{where}: empty expected result")
    error = _ERROR.match(lines[0])
    if error:
        extra: dict[str, str | None] = {"DETAIL": None, "HINT": None}
        for line in lines[1:]:
            key, _, value = line.partition(":  ")
            if key not in extra or not value:
                raise DocError(f"{where}: unexpected line after ERROR: {line!r}")
            extra[key] = value
        return Expected(
            sqlstate=error.group(1),
            message=error.group(2),
            detail=extra["DETAIL"],
            hint=extra["HINT"],
        )
    if len(lines) == 1 and _TAG.match(lines[0]):
        return Expected(tag=lines[0])
    if lines[0].startswith("-[ RECORD"):
        return _parse_expanded(lines, where=where)
    return _parse_aligned(lines, where=where)


def _cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line.split("|"))


def _parse_aligned(lines: list[str], *, where: str) -> Expected:
    if len(lines) < 3 or not set(lines[1]) <= set("-+"):
        raise DocError(f"{where}: expected a header, a ---+--- line and a (N rows) footer")
    footer = _FOOTER.match(lines[-1].strip())
    if not footer:
        raise DocError(f"{where}: the table must end with '(N rows)'")
    columns = _cells(lines[0])
    rows = tuple(_cells(line) for line in lines[2:-1])
    if len(rows) != int(footer.group(1)):
        raise DocError(f"{where}: footer says {footer.group(1)} rows, the table has {len(rows)}")
    for row in rows:
        if len(row) != len(columns):
            raise DocError(f"{where}: row {row} does not have {len(columns)} cells")
    return Expected(columns=columns, rows=rows)


def _parse_expanded(lines: list[str], *, where: str) -> Expected:
    records: list[list[tuple[str, str]]] = []
    for line in lines:
        if line.startswith("-[ RECORD"):
            records.append([])
            continue
        key, sep, value = line.partition("|")
        if not sep or not records:
            raise DocError(f"{where}: expected 'column | value', got {line!r}")
        records[-1].append((key.strip(), value.strip()))
    columns = tuple(key for key, _ in records[0])
    for record in records:
        if tuple(key for key, _ in record) != columns:
            raise DocError(f"{where}: records list different columns")
    return Expected(columns=columns, rows=tuple(tuple(v for _, v in r) for r in records))


def _parse_attrs(text: str, *, where: str) -> tuple[str, dict[str, str]]:
    name, *pairs = text.split()
    attrs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in {"as", "role", "after", "index"}:
            raise DocError(f"{where}: unknown marker attribute {pair!r}")
        attrs[key] = value
    return name, attrs


def _markdown_table(lines: list[str], start: int) -> list[list[str]]:
    """Rows (header first, separator dropped) of the markdown table starting at `start`."""
    rows: list[list[str]] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if all(set(cell) <= set("-: ") for cell in cells):
            continue
        rows.append(cells)
    return rows


def parse(text: str) -> Document:
    """Split the document into fixture, examples and contracts (see the module docstring)."""
    doc = Document(text=text)
    lines = text.splitlines()
    items: list[tuple[str, int, object]] = []  # (kind, line, payload)
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        marker = _MARKER.match(line.strip())
        if fence:
            end = i + 1
            while end < len(lines) and lines[end].rstrip() != "```":
                end += 1
            if end == len(lines):
                raise DocError(f"line {i + 1}: unclosed code fence")
            body = "\n".join(lines[i + 1 : end])
            items.append(("fence", i + 1, Fence(fence.group(1), body, i + 1)))
            i = end + 1
            continue
        if marker:
            items.append(("marker", i + 1, (marker.group(1), marker.group(2) or "")))
        elif line.startswith("|"):
            table = _markdown_table(lines, i)
            items.append(("table", i + 1, table))
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
            continue
        i += 1

    pos = 0
    while pos < len(items):
        kind, line_no, payload = items[pos]
        pos += 1
        if kind == "fence":
            assert isinstance(payload, Fence)
            if payload.lang == "sql":
                doc.unmarked_sql.append(line_no)
            continue
        if kind != "marker":
            continue
        assert isinstance(payload, tuple)
        what, arg = payload
        where = f"docs/frontend.md:{line_no}"
        following = items[pos] if pos < len(items) else None
        if what == "fixture":
            if not following or following[0] != "fence" or _lang(following) != "sql":
                raise DocError(f"{where}: the fixture marker must precede a sql block")
            doc.fixture = _body(following)
            pos += 1
        elif what == "contract":
            if not following or following[0] == "marker":
                raise DocError(f"{where}: contract {arg!r} has no table or block")
            content = following[2]
            assert isinstance(content, list | Fence)
            doc.contracts[arg] = content
            pos += 1
        else:
            name, attrs = _parse_attrs(arg, where=where)
            fences: list[Fence] = []
            while pos < len(items) and items[pos][0] == "fence" and len(fences) < 3:
                fence_item = items[pos][2]
                assert isinstance(fence_item, Fence)
                fences.append(fence_item)
                pos += 1
                if fence_item.lang == "text":
                    break
            langs = [f.lang for f in fences]
            if langs not in (["js", "sql", "text"], ["sql", "text"]):
                raise DocError(
                    f"{where}: test {name!r} needs [js], sql and text blocks, found {langs}"
                )
            if name in doc.examples:
                raise DocError(f"{where}: duplicate test name {name!r}")
            actor = attrs.get("role") or attrs.get("as", "A")
            doc.examples[name] = Example(
                name=name,
                line=line_no,
                actor=actor,
                after=tuple(a for a in attrs.get("after", "").split(",") if a),
                index=attrs.get("index"),
                js=fences[0].body if langs[0] == "js" else None,
                sql=fences[-2].body,
                expected=parse_expected(fences[-1].body, where=f"{where} ({name})"),
            )
    return doc


def _lang(item: tuple[str, int, object]) -> str:
    fence = item[2]
    return fence.lang if isinstance(fence, Fence) else ""


def _body(item: tuple[str, int, object]) -> str:
    fence = item[2]
    assert isinstance(fence, Fence)
    return fence.body


def load() -> Document:
    return parse(DOC.read_text(encoding="utf-8"))
