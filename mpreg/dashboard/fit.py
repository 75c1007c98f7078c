"""Tables that fit the console: columns dropped by rank, the name column never.

Each column has a drop rank; while a table would be wider than the space it
gets, columns go one at a time, highest rank first. The first column (the
name) is never dropped and never squeezed below its natural width (up to
``NAME_MAX``): at 60 columns a row still says whose it is. Pure: rows in, a
rich Table out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

Cell = str | Text

NAME_MAX = 32  # a longer name folds onto a second line rather than pushing columns out
WRAP_WIDTH = 16  # a wrapping column (a list of functions) counts this wide at most


@dataclass(frozen=True, slots=True)
class Column:
    """A table column; ``drop`` 0 is always shown, higher ranks are dropped first.

    A ``prefix`` column, once dropped, lives on in front of the first column's
    cell (``head: London``) when its rows differ; a ``suffix`` column after it
    (``London 2/3``): they are what tell otherwise equal rows apart. A
    ``wrap`` column wraps its cells instead of being dropped early.
    """

    header: str
    justify: Literal["left", "right"] = "right"
    drop: int = 0
    style: str = ""
    prefix: bool = False
    suffix: bool = False
    wrap: bool = False


def width_of(cell: Cell) -> int:
    return cell_len(plain(cell))


def plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _attached(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], kind: str) -> list[int]:
    """The prefix (or suffix) columns whose cells differ between rows (else they tell nothing)."""
    return [
        i
        for i, c in enumerate(columns)
        if getattr(c, kind) and len({plain(r[i]) for r in rows}) > 1
    ]


def _first_cell(
    row: Sequence[Cell], prefixes: Sequence[int], suffixes: Sequence[int], shown: Sequence[int]
) -> Cell:
    """The first column's cell, with the cells of dropped prefix and suffix columns."""
    before = [plain(row[i]) for i in prefixes if i not in shown]
    after = [plain(row[i]) for i in suffixes if i not in shown and plain(row[i]) not in ("", "-")]
    if not before and not after:
        return row[0]
    cell = Text(" ".join(before) + ": " if before else "")
    cell.append_text(row[0] if isinstance(row[0], Text) else Text(row[0]))
    if after:
        cell.append(" " + " ".join(after), style="dim")
    return cell


def fit_table(
    title: str, columns: Sequence[Column], rows: Sequence[Sequence[Cell]], max_width: int
) -> Table:
    """A table of the columns that fit ``max_width`` (dropping by rank), cells unwrapped."""
    natural = [
        max([width_of(c.header), *(width_of(row[i]) for row in rows)])
        for i, c in enumerate(columns)
    ]
    least = [min(n, WRAP_WIDTH) if c.wrap else n for n, c in zip(natural, columns, strict=True)]
    shown = list(range(len(columns)))
    prefixes = _attached(columns, rows, "prefix")
    suffixes = _attached(columns, rows, "suffix")

    def first_width(indexes: list[int]) -> int:
        cells = (width_of(_first_cell(r, prefixes, suffixes, indexes)) for r in rows)
        return min(max([natural[0], *cells]), NAME_MAX)

    def width(indexes: list[int]) -> int:
        # cells, plus padding and borders
        return first_width(indexes) + sum(least[i] for i in indexes[1:]) + 3 * len(indexes) + 1

    # One column at a time: the highest rank first, the rightmost of a rank first.
    for i in sorted(
        (i for i, c in enumerate(columns) if c.drop), key=lambda i: (-columns[i].drop, -i)
    ):
        if width(shown) <= max_width:
            break
        shown.remove(i)
    table = Table(title=title, title_justify="left")
    for i in shown:
        col = columns[i]
        table.add_column(
            col.header,
            justify=col.justify,
            style=col.style,
            no_wrap=i != 0 and not col.wrap,
            overflow="fold" if i == 0 or col.wrap else "ellipsis",
            # The name keeps its width: other columns give way first.
            min_width=first_width(shown) if i == 0 else least[i] if col.wrap else None,
        )
    for row in rows:
        table.add_row(_first_cell(row, prefixes, suffixes, shown), *(row[i] for i in shown[1:]))
    return table
