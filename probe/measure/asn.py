"""Origin ASN of an address, from an optional local MaxMind-format database.

A local file, never an online lookup: asking a web service "who owns this
address" from the vantage would tell that service what we measure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class AsnDatabase:
    def __init__(self, path: Path) -> None:
        import maxminddb  # only a vantage that configures a database pays for the reader

        self._reader: Any = maxminddb.open_database(str(path))

    def lookup(self, address: str) -> int | None:
        try:
            record = self._reader.get(address)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        asn = record.get("autonomous_system_number")
        return asn if isinstance(asn, int) else None

    def close(self) -> None:
        self._reader.close()
