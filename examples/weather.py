"""Per-city temperature models: dataset actors for mpreg (what ``mpreg demo`` runs).

Each city is a dataset. Its actor reads the city's year of daily readings
from ``data/city_temperatures.csv`` when it starts, fits a seasonal
regression ``temp = a + b*cos(wd) + c*sin(wd)`` (``w = 2*pi/365.25``, ``d`` the
day of the year) by least squares, and then serves predictions from memory.
Pure Python, so the default install stays light.

Serve it::

    mpreg start --head --module examples/weather.py
    mpreg call predict 196 --dataset london       # mid-July in London

or from Python::

    mpreg.request([
        Command("|london", "predict", [196], ["london"]),
        Command("|sydney", "predict", [196], ["sydney"]),
        Command("|gap", "difference", ["|london", "|sydney"]),
    ])
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import mpreg

DATA = Path(__file__).resolve().with_name("data") / "city_temperatures.csv"
OMEGA = 2 * math.pi / 365.25


@dataclass(frozen=True)
class SeasonalFit:
    """``temp(day) = mean + cos_coef*cos(w*day) + sin_coef*sin(w*day)``."""

    mean: float
    cos_coef: float
    sin_coef: float
    r2: float
    n: int

    def predict(self, day: float) -> float:
        return (
            self.mean
            + self.cos_coef * math.cos(OMEGA * day)
            + self.sin_coef * math.sin(OMEGA * day)
        )

    @property
    def swing(self) -> float:
        """Half the difference between the warmest and the coldest day."""
        return math.hypot(self.cos_coef, self.sin_coef)

    @property
    def warmest_day(self) -> int:
        day = math.atan2(self.sin_coef, self.cos_coef) / OMEGA
        return round(day % 365.25) or 365


def load_city(city: str, path: Path = DATA) -> list[tuple[int, float]]:
    """The (day of year, temperature) readings of ``city``; ValueError if it has none."""
    with path.open(newline="") as f:
        rows = [(int(r["day"]), float(r["temp_c"])) for r in csv.DictReader(f) if r["city"] == city]
    if not rows:
        raise ValueError(f"no readings for city {city!r} in {path}")
    return rows


def fit_seasonal(rows: list[tuple[int, float]]) -> SeasonalFit:
    """Least squares fit of the seasonal model (normal equations, 3x3)."""
    features = [(1.0, math.cos(OMEGA * d), math.sin(OMEGA * d)) for d, _ in rows]
    temps = [t for _, t in rows]
    gram = [[sum(x[i] * x[j] for x in features) for j in range(3)] for i in range(3)]
    moments = [sum(x[i] * t for x, t in zip(features, temps, strict=True)) for i in range(3)]
    a, b, c = _solve3(gram, moments)
    mean_t = sum(temps) / len(temps)
    residual = sum(
        (t - (a + b * x[1] + c * x[2])) ** 2 for x, t in zip(features, temps, strict=True)
    )
    total = sum((t - mean_t) ** 2 for t in temps) or 1.0
    return SeasonalFit(a, b, c, 1 - residual / total, len(rows))


def _solve3(m: list[list[float]], v: list[float]) -> list[float]:
    """Solve ``m @ x = v`` by Gaussian elimination with partial pivoting."""
    rows = [[*m[i], v[i]] for i in range(3)]
    for col in range(3):
        pivot = max(range(col, 3), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, 3):
            factor = rows[r][col] / rows[col][col]
            rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    x = [0.0, 0.0, 0.0]
    for r in (2, 1, 0):
        x[r] = (rows[r][3] - sum(rows[r][k] * x[k] for k in range(r + 1, 3))) / rows[r][r]
    return x


class CityModel:
    """A city's fitted model; subclasses name the city (and are the actors)."""

    city = ""

    def __init__(self) -> None:
        self.fit = fit_seasonal(load_city(self.city))

    def predict(self, day_of_year: int) -> float:
        """The expected mean temperature (°C) on ``day_of_year`` (1-365)."""
        return round(self.fit.predict(day_of_year), 1)

    def warmest_day(self) -> int:
        """The day of the year the model peaks."""
        return self.fit.warmest_day

    def summary(self) -> dict[str, float | int | str]:
        """The fitted model in numbers."""
        fit = self.fit
        return {
            "city": self.city,
            "mean_c": round(fit.mean, 1),
            "swing_c": round(fit.swing, 1),
            "warmest_day": fit.warmest_day,
            "r2": round(fit.r2, 3),
            "readings": fit.n,
        }


@mpreg.actor(datasets=["london"])
class London(CityModel):
    city = "london"


@mpreg.actor(datasets=["sydney"])
class Sydney(CityModel):
    city = "sydney"


@mpreg.actor(datasets=["tokyo"])
class Tokyo(CityModel):
    city = "tokyo"


@mpreg.actor(datasets=["cairo"])
class Cairo(CityModel):
    city = "cairo"


@mpreg.function
def difference(a: float, b: float) -> float:
    """``a - b``, rounded to a tenth (temperatures)."""
    return round(a - b, 1)


@mpreg.function
def warmest(*summaries: dict[str, float | int | str]) -> str:
    """The city whose summary has the highest mean temperature."""
    return str(max(summaries, key=lambda s: float(s["mean_c"]))["city"])
