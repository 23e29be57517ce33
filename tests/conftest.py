from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from datasets.synthetic.generator import GeneratorSettings, generate

FACTS = Path(__file__).resolve().parents[2] / "shared" / "facts" / "time_use_and_sensors.md"


@pytest.fixture(scope="session")
def default_dataset():
    """The default simulated dataset (8 NSOs, seed 0)."""
    return generate(GeneratorSettings())


@pytest.fixture(scope="session")
def fact_sheet() -> str:
    assert FACTS.exists(), f"the fact sheet must lie beside the checkout: {FACTS}"
    return FACTS.read_text()


def markdown_table(text: str, heading: str) -> pd.DataFrame:
    """The first Markdown table after the heading that starts with `heading`."""
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                rows.append(cells)
        elif rows:
            break
    return pd.DataFrame(rows[1:], columns=rows[0])
