"""Shared pieces of the benchmarks: realistic federations and the verdict wording."""

from __future__ import annotations

import resource

import pandas as pd

from datasets.synthetic.generator import GeneratorSettings, generate


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def verdict(ok: bool | None) -> str:
    return "[green]met[/]" if ok else "[red]NOT met[/]"


def ten_nso_windows(persons_scale: float) -> pd.DataFrame:
    """The 8 default NSOs with the two largest split in half by person: 10 NSOs of realistic sizes."""
    w = generate(GeneratorSettings(persons_scale=persons_scale)).windows.copy()
    nso = w["nso"].astype(str).to_numpy().copy()
    pid = w["person_id"].astype(str).to_numpy()
    for code in ("DE", "FR"):
        sel = nso == code
        half = pd.factorize(pid[sel])[0] % 2
        nso[sel] = [f"{code}{'ab'[h]}" for h in half]
    w["nso"] = pd.Categorical(nso)
    return w
