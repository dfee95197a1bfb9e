"""A small line chart written as a PNG with zlib: the bench's plot without a plotting library.

Why not matplotlib: the bench needs one kind of chart (cumulative committed runs over
time, a few lines per panel), and a plotting stack would be the dev extras' largest
dependency for it. A PNG is a signature, an IHDR chunk, zlib-compressed scanlines and an
IEND chunk; lines are drawn pixel by pixel and labels with a 3×5 pixel font.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Panel", "Series", "write_line_chart"]

Color = tuple[int, int, int]

# 3×5 glyphs, one string of 15 bits (rows top to bottom) per character.
_FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", ".": "000000000000010", ",": "000000000010100",
    "-": "000000111000000", "/": "001001010100100", ":": "000010000010000",
    "=": "000111000111000", "%": "101001010100101", "(": "010100100100010",
    ")": "010001001001010", " ": "000000000000000", "+": "000010111010000",
    "a": "000111101111101", "b": "100111101101111", "c": "000111100100111",
    "d": "001111101101111", "e": "000111111100111", "f": "011100110100100",
    "g": "000111101111001", "h": "100111101101101", "i": "010000010010010",
    "j": "001000001101111", "k": "100101110101101", "l": "110010010010111",
    "m": "000111111101101", "n": "000110101101101", "o": "000111101101111",
    "p": "000111101111100", "q": "000111101111001", "r": "000111100100100",
    "s": "000111110011111", "t": "010111010010011", "u": "000101101101111",
    "v": "000101101101010", "w": "000101101111111", "x": "000101010101101",
    "y": "000101111001111", "z": "000111011110111",
}  # fmt: skip
WHITE: Color = (255, 255, 255)
GREY: Color = (200, 200, 200)
BLACK: Color = (0, 0, 0)


@dataclass(frozen=True, kw_only=True)
class Series:
    """One line: (x, y) points in data units."""

    label: str
    color: Color
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True, kw_only=True)
class Panel:
    """One chart: a title and its lines, sharing axes from 0 to the data's maxima."""

    title: str
    series: Sequence[Series]


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(WHITE * (width * height))

    def dot(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = 3 * (y * self.width + x)
            self.pixels[i : i + 3] = bytes(color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, thick: int = 1) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            x = x0 + (x1 - x0) * s // steps
            y = y0 + (y1 - y0) * s // steps
            for d in range(thick):
                self.dot(x, y + d, color)
                self.dot(x + d, y, color)

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> None:
        for ch in text.lower():
            glyph = _FONT.get(ch, _FONT[" "])
            for bit, on in enumerate(glyph):
                if on == "1":
                    for dx in range(scale):
                        for dy in range(scale):
                            self.dot(x + (bit % 3) * scale + dx, y + (bit // 3) * scale + dy, color)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[3 * y * self.width : 3 * (y + 1) * self.width])
            for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def _nice(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2 or 5 × 10^k)."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def _label(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"


def write_line_chart(
    path: Path, panels: Sequence[Panel], *, x_label: str, y_label: str, width: int = 720
) -> None:
    """Panels stacked vertically, each with its own axes and a legend (top left, where
    cumulative curves are not); written to ``path``."""
    panel_h, top, left, right, bottom = 230, 34, 70, 20, 40
    canvas = _Canvas(width, len(panels) * (panel_h + top + bottom))
    for p, panel in enumerate(panels):
        y0 = p * (panel_h + top + bottom) + top
        x_max = _nice(max((x for s in panel.series for x, _ in s.points), default=1.0))
        y_max = _nice(max((y for s in panel.series for _, y in s.points), default=1.0))
        plot_w = width - left - right
        canvas.text(left, y0 - 26, panel.title)
        for i in range(5):  # grid and tick labels
            gy = y0 + panel_h - panel_h * i // 4
            canvas.line(left, gy, left + plot_w, gy, GREY)
            canvas.text(4, gy - 5, _label(y_max * i / 4))
            gx = left + plot_w * i // 4
            canvas.line(gx, y0, gx, y0 + panel_h, GREY)
            canvas.text(gx - 6, y0 + panel_h + 6, _label(x_max * i / 4))
        canvas.line(left, y0 + panel_h, left + plot_w, y0 + panel_h, BLACK)
        canvas.line(left, y0, left, y0 + panel_h, BLACK)
        canvas.text(left + plot_w - 8 * len(x_label), y0 + panel_h + 20, x_label)
        canvas.text(left + 6, y0 + 4, y_label)
        for k, series in enumerate(panel.series):
            canvas.text(left + 6, y0 + 22 + 14 * k, series.label, series.color)
            last: tuple[int, int] | None = None
            for x, y in series.points:
                px = left + round(plot_w * x / x_max)
                py = y0 + panel_h - round(panel_h * y / y_max)
                if last is not None:
                    canvas.line(last[0], last[1], px, py, series.color, thick=2)
                last = (px, py)
    path.write_bytes(canvas.png())
