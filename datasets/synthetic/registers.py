"""Simulated inputs of the coverage use case: an NSO's population register and a third party's
customer list (a mobile operator's, a utility's) that covers part of it.

Persons carry realistic composite keys - first name, surname, date of birth, postcode - and a
national id. The third party holds `coverage` of the register's persons, plus persons outside the
register (emigrants, tourists, businesses' phones), some listed twice, and a share of its records
has key errors as real lists do: a typo in a name, day and month transposed, a missing postcode.
The truth (who is in both) is returned beside the lists, for evaluation only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

FIRST_NAMES = (
    "Anna Maria Elena Sofia Laura Julia Sara Emma Lea Clara Eva Ida Alice Marta Nina Paula Rosa Ines Hanna Lucia "
    "Irene Agnes Helena Olga Vera Jana Katarina Ewa Zofia Aino Liisa Saara Anneli Marie Camille Chiara Giulia "
    "Francesca Carmen Pilar Nuria Alba Lotte Sanne Femke Emily Olivia Grace Chloe Mia Ella Jan Piotr Tomasz "
    "Jakub Michal Pawel Juha Mikko Matti Antti Lukas Jonas Felix Paul Max Leon Noah Elias Ben Finn Luca Marco "
    "Giuseppe Luigi Francesco Andrea Pablo Javier Carlos Miguel Jorge Pierre Louis Hugo Jules Thomas Daan Sem "
    "Bram Lars Sven Erik Oliver Harry George Jack James William Henry Adam Peter Martin David Daniel Simon"
).split()
SURNAMES = (
    "Muller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf Schroder "
    "Neumann Schwarz Zimmermann Braun Kruger Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau "
    "Simon Laurent Lefebvre Michel Garcia David Bertrand Roux Vincent Fournier Rossi Russo Ferrari Esposito Bianchi "
    "Romano Colombo Ricci Marino Greco Bruno Gallo Conti DeLuca Mancini Costa Giordano Rizzo Lombardi Moretti "
    "Fernandez Gonzalez Rodriguez Lopez Martinez Sanchez Perez Gomez Diaz Alvarez Moreno Munoz Romero Alonso "
    "Gutierrez Navarro Torres Dominguez Vazquez Ramos Nowak Kowalski Wisniewski Wojcik Kowalczyk Kaminski "
    "Lewandowski Zielinski Szymanski Wozniak Dabrowski Kozlowski Jankowski Mazur Kwiatkowski Krawczyk Korhonen "
    "Virtanen Makinen Nieminen Makela Hamalainen Laine Heikkinen Koskinen Jarvinen Smith Jones Williams Taylor "
    "Brown Davies Evans Wilson Johnson Roberts Walker Wright Robinson Thompson White Hughes Edwards Green Hall "
    "Wood Harris Lewis DeJong Jansen DeVries VandenBerg VanDijk Bakker Janssen Visser Smit Meijer DeBoer Mulder"
).split()
POSTCODES = 20_000  # distinct postcodes: with names and dates of birth, a composite key is (almost) unique


class RegisterSettings(BaseModel):
    """[coverage.data]: what to simulate."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, le=2**31 - 1)
    register_size: int = Field(100_000, ge=10, le=10_000_000, description="persons in the NSO's register")
    coverage: float = Field(0.8, ge=0, le=1, description="true share of register persons in the third party's list")
    outside_share: float = Field(0.1, ge=0, le=10, description="records of persons outside the register, as a "
                                 "share of the list's register persons")
    duplicate_rate: float = Field(0.02, ge=0, le=1, description="share of the list's records listed twice")
    key_error_rate: float = Field(0.05, ge=0, le=1, description="share of the list's records with a key error")


@dataclass(frozen=True)
class Registers:
    register: pd.DataFrame  # the NSO's persons: first_name, surname, birth_date, postcode, national_id
    source: pd.DataFrame  # the third party's records, same columns
    source_person: np.ndarray  # register row of each source record (-1: outside the register); truth only
    in_source: np.ndarray  # [register_size] bool: the person is in the third party's list; truth only

    @property
    def true_coverage(self) -> float:
        return float(self.in_source.mean())


def _persons(rng: np.random.Generator, n: int, id_offset: int) -> pd.DataFrame:
    days = rng.integers(0, 365 * 80, n)  # born 1935-2014
    dob = (np.datetime64("1935-01-01") + days.astype("timedelta64[D]")).astype(str)
    return pd.DataFrame({
        "first_name": np.array(FIRST_NAMES)[rng.integers(len(FIRST_NAMES), size=n)],
        "surname": np.array(SURNAMES)[rng.integers(len(SURNAMES), size=n)],
        "birth_date": dob,
        "postcode": np.char.zfill(rng.integers(10_000, 10_000 + POSTCODES, n).astype(str), 5),
        "national_id": (np.arange(n) + id_offset + 100_000_000).astype(str),
    })


def _with_errors(rng: np.random.Generator, records: pd.DataFrame, rate: float) -> pd.DataFrame:
    """A `rate` share of records gets one error: a surname typo, day and month swapped, or no postcode."""
    out = records.copy()
    hit = np.flatnonzero(rng.random(len(out)) < rate)
    kind = rng.integers(3, size=len(hit))
    typo = hit[kind == 0]
    letters = np.array(list("ABCDEFGHIJKLMNOPRSTUVWZ"))
    names = out["surname"].to_numpy(dtype=object)
    for i, pos, ch in zip(typo, rng.integers(0, 1_000, len(typo)), letters[rng.integers(len(letters), size=len(typo))]):
        s = names[i]
        p = pos % len(s)
        names[i] = s[:p] + (ch if ch != s[p].upper() else "Q") + s[p + 1:]
    out["surname"] = names
    swap = hit[kind == 1]
    dob = out["birth_date"].to_numpy(dtype=object)
    for i in swap:
        y, m, d = dob[i].split("-")
        dob[i] = f"{y}-{d}-{m}" if int(d) <= 12 and d != m else f"{y}-{m}-{int(d) % 28 + 1:02d}"
    out["birth_date"] = dob
    postcode = out["postcode"].to_numpy(dtype=object)
    postcode[hit[kind == 2]] = ""
    out["postcode"] = postcode
    return out


def simulate_registers(s: RegisterSettings) -> Registers:
    rng = np.random.default_rng([s.seed, 0xC0FE])
    register = _persons(rng, s.register_size, 0)
    in_source = rng.random(s.register_size) < s.coverage
    members = np.flatnonzero(in_source)
    outside = _persons(rng, int(round(len(members) * s.outside_share)), s.register_size)
    person = np.concatenate([members, np.full(len(outside), -1)])
    source = pd.concat([register.iloc[members], outside], ignore_index=True)
    dup = np.flatnonzero(rng.random(len(source)) < s.duplicate_rate)
    source = pd.concat([source, source.iloc[dup]], ignore_index=True)
    person = np.concatenate([person, person[dup]])
    source = _with_errors(rng, source, s.key_error_rate)
    order = rng.permutation(len(source))  # a list in no particular order
    return Registers(register, source.iloc[order].reset_index(drop=True), person[order], in_source)
