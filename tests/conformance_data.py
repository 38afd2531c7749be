"""Where the official StyleGAN2 conformance data lives (shared/conformance, see its README)."""

import os
from pathlib import Path


def conformance_dir() -> Path | None:
    """shared/conformance beside the clone (CI), else $STYLEFORGE_CONFORMANCE, else /work/shared/conformance."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "conformance"]
    if os.environ.get("STYLEFORGE_CONFORMANCE"):
        candidates.append(Path(os.environ["STYLEFORGE_CONFORMANCE"]))
    candidates.append(Path("/work/shared/conformance"))
    return next((p for p in candidates if (p / "kwargs.json").is_file()), None)


SKIP_REASON = "conformance data not found (shared/conformance beside the clone, or $STYLEFORGE_CONFORMANCE)"
