"""Where the official conformance data lives (shared/conformance, see its README): `../shared/conformance`
beside the checkout, or `$STYLEFORGE_CONFORMANCE`. Without it the conformance tests skip, saying why; with
STYLEFORGE_REQUIRE_CONFORMANCE=1 (CI sets it) they fail instead."""

import os
from pathlib import Path

import pytest

REASON = "conformance data not found (../shared/conformance beside the checkout, or $STYLEFORGE_CONFORMANCE)"


def conformance_dir() -> Path | None:
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "conformance"]
    if os.environ.get("STYLEFORGE_CONFORMANCE"):
        candidates.insert(0, Path(os.environ["STYLEFORGE_CONFORMANCE"]))
    found = next((p for p in candidates if (p / "kwargs.json").is_file()), None)
    if found is None and os.environ.get("STYLEFORGE_REQUIRE_CONFORMANCE") == "1":
        raise FileNotFoundError(REASON)
    return found


def require_conformance() -> Path:
    """The data folder, or skips the calling test module (fails it when the data is required)."""
    found = conformance_dir()
    if found is None:
        pytest.skip(REASON, allow_module_level=True)
    return found
