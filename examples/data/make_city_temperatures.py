"""Regenerate ``city_temperatures.csv``: a year of daily mean temperatures per city.

The readings are synthetic but shaped like each city's climate (annual mean,
seasonal swing, warmest time of year, day-to-day noise), drawn with a fixed
seed so the file, and every model fitted from it, is reproducible::

    python examples/data/make_city_temperatures.py
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

# city: (annual mean °C, half the seasonal swing °C, warmest day of year, noise sd °C)
CLIMATES: dict[str, tuple[float, float, int, float]] = {
    "london": (11.3, 7.0, 200, 2.0),
    "sydney": (18.3, 4.8, 20, 1.8),
    "tokyo": (15.8, 10.5, 215, 1.9),
    "cairo": (22.4, 7.2, 205, 1.5),
}

OUT = Path(__file__).with_name("city_temperatures.csv")


def main() -> None:
    rng = random.Random(20240101)
    with OUT.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["city", "day", "temp_c"])
        for city, (mean, swing, warmest, noise) in CLIMATES.items():
            for day in range(1, 366):
                seasonal = swing * math.cos(2 * math.pi * (day - warmest) / 365.25)
                writer.writerow([city, day, f"{mean + seasonal + rng.gauss(0, noise):.1f}"])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
