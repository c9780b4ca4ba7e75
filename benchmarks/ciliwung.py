"""A recorded public series of the Ciliwung water gates, as a readings CSV for the backtests.

Katulampa (Bogor) → Depok (~3 h) → Manggarai (~6 h), the gates of /work/shared/domain.md and of
``config/stations.yaml`` (``ciliwung-katulampa``, ``ciliwung-depok``, ``ciliwung-manggarai``,
with their thresholds and travel times). Hourly water levels in cm, 16 Oct 2021 to 8 May 2025
(31,224 hours a gauge), as published in the GitHub repository ``elvano22/Pintu-Air``, file
``data/02 All Data.csv`` at commit ``8b65bc3dea999e368cde869407668c5e0fa030d8`` (SHA-256 below).
That repository states neither where the recording comes from nor a licence, so Siaga does not
ship it: download it, convert it, and run the backtest (docs/forecasting.md has the figures)::

    curl -o ciliwung-wide.csv "https://raw.githubusercontent.com/elvano22/Pintu-Air/\\
    8b65bc3dea999e368cde869407668c5e0fa030d8/data/02%20All%20Data.csv"
    python -m benchmarks.ciliwung ciliwung-wide.csv ciliwung.csv
    siaga forecast backtest --readings ciliwung.csv --stations config/stations.yaml \\
        --train-until 2024-10-01T00:00:00+07:00 --forecasts-out forecasts.csv --json

Its author filled single missing hours (a few dozen a gauge) with the mean of the hours either
side, and negative values likewise (their notebook ``02 Data Preperation.ipynb``); everything else,
glitches included (Manggarai reads 10 cm at 08:00 on 18 Oct 2021, between two hours at
580 cm), is as recorded.
Times are local (WIB, +07:00).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

SOURCE_SHA256 = "95d0424c713debc854e5c430ff8d6e2d2719fc18a3515599afbd25747b57c01d"
"""The file as downloaded from the commit above."""
GAUGES = {
    "Katulampa (air)": "ciliwung-katulampa",
    "Depok (air)": "ciliwung-depok",
    "Manggarai (air)": "ciliwung-manggarai",
}
"""The recording's water level columns and the registry's stations."""
WIB = "+07:00"


def readings_rows(lines: Iterable[str]) -> Iterator[str]:
    """The wide hourly table (``Tanggal`` and a level column per gate) as readings CSV lines
    (``station,ts,metric,value``, header first); an empty cell is a gap, left out."""
    yield "station,ts,metric,value"
    for row in csv.DictReader(lines):
        ts = row["Tanggal"].strip().replace(" ", "T") + WIB
        for column, station in GAUGES.items():
            value = (row.get(column) or "").strip()
            if value and value.lower() != "nan":
                yield f"{station},{ts},water_level_cm,{float(value):g}"


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.ciliwung WIDE.csv READINGS.csv``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("source", type=Path, help="data/02 All Data.csv of elvano22/Pintu-Air")
    parser.add_argument("out", type=Path, help="the readings CSV to write")
    args = parser.parse_args(argv)
    data = args.source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"note: {args.source} is not the file measured in docs/forecasting.md ({digest})")
    rows = readings_rows(data.decode("utf-8-sig").splitlines())
    args.out.write_text("\n".join(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
