"""One NSO's whole time-use estimate, as its ClientApp computes it on request of the coordinator.

Phase "confusion": the noisy confusion counts of its labelled persons (for a pooled matrix).
Phase "estimates": the national table - corrected minutes per day per label and cell, intervals,
classify-and-count and diary-sample figures - and the pooling vector. The noise of each release comes
from the NSO's Randomness (clients/privacy/randomness.py): OS entropy in secure mode, its node secret
and the release's number in the model's ledger in reproducible mode (release_ledger.py), so no two
releases share a stream. The ClientApp keeps the confusion counts of the first phase in its node
state, so both phases use the same noisy counts.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from datasets.errors import UserError
from datasets.inference_data import Sample, load_sample

from ..privacy.randomness import Randomness
from . import pooled_release, ppi, ppi_release, quantify
from .bootstrap import bootstrap
from .cells import Cell, cell_persons, cell_sums, layout, membership, partitions, per_person_day, person_days
from .config import InferenceConfig
from .estimate_steps import Released, corrected, labelled_persons, predict, sensor_release
from .pooling import confusion_layout, estimates_layout
from .release import labelled_mechanism, noise_multiplier, sensor_mechanism


@dataclass(frozen=True)
class Setting:
    """What the coordinator tells every NSO, identical for all (from the inference index)."""

    cfg: InferenceConfig
    subdir: str  # the sensor-only sample's folder in each NSO's data directory
    labels: tuple[str, ...]
    wellbeing_range: tuple[float, float] | None
    window_minutes: float
    slots_per_day: int
    available: tuple[str, ...]  # breakdowns the data allow
    delta: float
    max_labelled_windows: int
    max_person_days: int
    max_diary_days: int
    release: int = 1  # this release's number in the model's ledger: it names the noise stream
    nsos: int = 1  # NSOs in the federation
    grid_step: float = 0.0  # SecAgg+'s grid step of the pooling exchange (publish = "pooled": pooled_release.py)

    @property
    def pooled_only(self) -> bool:
        """Only the pooled rows are published, each NSO adding a share of the noise."""
        return self.cfg.publish == "pooled"

    @property
    def cells(self) -> list[Cell]:
        return layout(list(self.cfg.groups), list(self.available))

    @property
    def day_minutes(self) -> float:
        return self.window_minutes * self.slots_per_day

    @property
    def day_bound(self) -> float | None:
        """L2 bound of a released person-day's minute vector: under DP `day_clip` x the day, else none."""
        return self.day_minutes * self.cfg.day_clip if self.cfg.epsilon is not None else None

    @property
    def minutes_bound(self) -> float:
        """What one person-day adds at most (L2) to a cell's sums of minutes: their sensitivity's unit."""
        return self.day_bound or self.day_minutes

    @property
    def wellbeing_centre(self) -> float:
        """The middle of the rating scale: well-being sums are released centred on it, which halves
        their sensitivity against raw ratings on a [0, max] scale."""
        return (self.wellbeing_range[0] + self.wellbeing_range[1]) / 2.0 if self.wellbeing_range else 0.0

    @property
    def wellbeing_bound(self) -> float:
        """The largest |centred rating|: half the scale."""
        return max(abs(v - self.wellbeing_centre) for v in self.wellbeing_range) if self.wellbeing_range else 0.0

    @property
    def wellbeing_day_bound(self) -> float | None:
        """L2 bound of a person-day's centred well-being sums (per predicted label): the day's windows
        x half the scale, under DP clipped to `day_clip` of it as the minutes are; none without a scale."""
        if not self.wellbeing_range:
            return None
        return self.slots_per_day * self.wellbeing_bound * (self.cfg.day_clip if self.cfg.epsilon is not None else 1.0)

    def mechanisms(self):
        """(sensor-only, labelled) mechanisms; under PPI the person-day counts are not released (the
        minutes imply them, ppi_release.py)."""
        z = noise_multiplier(self.cfg.epsilon, self.delta)
        sensor = sensor_mechanism(z, self.delta, partitions(self.cells), self.cfg.max_days, self.minutes_bound,
                                  self.wellbeing_day_bound, person_days=self.cfg.resolved_estimator != "ppi",
                                  wellbeing_share=self.cfg.wellbeing_share)
        return sensor, labelled_mechanism(z, self.delta, partitions(self.cells), self.cfg.max_days, self.slots_per_day)

    def ppi_mechanisms(self):
        """(held-out labelled, trained) persons' mechanisms of the DP release of PPI++."""
        z, args = noise_multiplier(self.cfg.epsilon, self.delta), (partitions(self.cells), self.cfg.max_days,
                                                                   self.minutes_bound)
        return ppi_release.labelled_mechanism(z, self.delta, *args), ppi_release.trained_mechanism(z, self.delta, *args)

    def ppi_noise_std(self) -> dict[str, float]:
        """One NSO's noise standard deviation on each sum of the DP release of PPI++."""
        sensor, _ = self.mechanisms()
        lab, tr = (m.noise_std for m in self.ppi_mechanisms())
        return {"sensor_predicted": sensor.noise_std["minutes"], "labelled_diary": lab["diary"],
                "labelled_predicted": lab["predicted"], "trained_diary": tr["diary"]}

    def pooled_noise_std(self) -> dict[str, float]:
        """The noise standard deviation of one NSO's part of the pooled sums: its national release's
        (`ppi_noise_std`), or under publish = "pooled" its share (pooled_release.share_std)."""
        if not self.pooled_only:
            return self.ppi_noise_std()
        share = pooled_release.share_std(self, self.estimates_layout())
        return {sums: share[block] for block, sums in pooled_release.NOISY_SUMS.items()}

    @property
    def dp_ppi(self) -> bool:
        return self.cfg.resolved_estimator == "ppi" and self.cfg.epsilon is not None

    def confusion_layout(self):
        return confusion_layout(len(self.cells), len(self.labels), self.max_labelled_windows)

    def estimates_layout(self):
        return estimates_layout(len(self.cells), len(self.labels), self.max_person_days, self.max_diary_days,
                                self.day_minutes, self.max_person_days * self.slots_per_day, self.wellbeing_bound,
                                dp_ppi_noise_std=max(self.ppi_noise_std().values()) if self.dp_ppi else None)


def setting_to_json(st: Setting) -> str:
    return json.dumps({**asdict(st), "cfg": st.cfg.model_dump(mode="json")})


def setting_from_json(text: str) -> Setting:
    raw = json.loads(text)
    wb = raw.pop("wellbeing_range")
    return Setting(**{**raw, "cfg": InferenceConfig.model_validate(raw["cfg"]), "labels": tuple(raw["labels"]),
                      "available": tuple(raw["available"]), "wellbeing_range": tuple(wb) if wb else None})


def inference_delta(cfg: InferenceConfig, inf_index: dict) -> float:
    """The release's delta: `inference.delta`, or 0.1 / the largest group of persons; a delta not
    below 1/n would allow publishing one person's data outright, and is refused."""
    n = max(max(c["sensor_only_persons"], c["diary_persons"]) for c in inf_index["counts"].values())
    delta = cfg.delta or 0.1 / max(n, 1)
    if delta >= 1.0 / max(n, 1):
        raise UserError(f"inference.delta = {delta:g} is not below 1/n = {1 / n:g} (the largest NSO's {n} sensor-only "
                        "or diary persons); allowed: a smaller delta, or leave it unset for 0.1 / n")
    return delta


def setting_for(cfg: InferenceConfig, inf_index: dict, subdir: str, delta: float, release: int = 1,
                grid_step: float = 0.0) -> Setting:
    """The coordinator's one setting for every NSO, from the sensor-only sample's index; `grid_step`:
    SecAgg+'s grid of the pooling exchange, which publish = "pooled" rounds to itself."""
    counts = inf_index["counts"].values()
    wb = inf_index.get("wellbeing_range")
    st = Setting(cfg=cfg, subdir=subdir, labels=tuple(inf_index["labels"]), wellbeing_range=tuple(wb) if wb else None,
                 window_minutes=float(inf_index["window_minutes"]), slots_per_day=int(inf_index["slots_per_day"]),
                 available=tuple(inf_index["available_groups"]), delta=delta,
                 max_labelled_windows=max(c["labelled_windows"] for c in counts),
                 max_person_days=cfg.max_days * max(c["sensor_only_persons"] for c in counts),
                 max_diary_days=cfg.max_days * max(c["diary_persons"] for c in counts), release=release,
                 nsos=len(inf_index["counts"]), grid_step=grid_step if cfg.publish == "pooled" else 0.0)
    if st.pooled_only:
        pooled_release.honest_nsos(st)  # enough NSOs for the shares, before any work
    return st


def _rng(seed: int, nso: str, what: str) -> np.random.Generator:
    """The bootstrap's stream (internal quality figures, no DP noise)."""
    return np.random.default_rng([seed, zlib.crc32(nso.encode()), zlib.crc32(what.encode())])


def noisy_confusion(model: torch.nn.Module, data_dir: str, nso: str, st: Setting, noise: Randomness):
    """(noisy confusion counts, the labelled persons): this NSO's labelled release."""
    sample = load_sample(Path(data_dir) / st.subdir, "labelled", nso)
    p = predict(model, sample.x, st.wellbeing_range)
    lab = labelled_persons(sample, p, st.cfg.resolved_estimator, len(st.labels), st.cfg.max_days, st.cells)
    _, mech = st.mechanisms()
    counts = mech.apply({"confusion": lab.confusion.sum(axis=0)}, noise.generator("time-use-confusion", st.release))
    return counts["confusion"], lab


def _persons(sample: Sample, st: Setting, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per person and cell (person-days, minutes), each person-day clipped to the release's bound."""
    days = person_days(sample, st.cfg.max_days)
    return cell_persons(sample, days, membership(sample, days, st.cells), per_person_day(values, days, st.day_bound))


def _ppi_groups(data_dir: str, nso: str, st: Setting, model) -> list[ppi.Group]:
    """The trained and the held-out labelled diary persons per cell: diaries and predictions."""
    wm, k = st.window_minutes, len(st.labels)
    groups = []
    for kind in ("trained", "labelled"):
        sample = load_sample(Path(data_dir) / st.subdir, kind, nso)
        d, y = _persons(sample, st, np.eye(k)[sample.y] * wm)
        groups.append(ppi.Group(d, y, _persons(sample, st, predict(model, sample.x, st.wellbeing_range).proba * wm)[1]))
    return groups


def _ppi(data_dir: str, nso: str, st: Setting, model, sensor: Sample, p_sensor, days, member, noise: Randomness,
         released_minutes: np.ndarray) -> tuple[ppi.Table, dict[str, np.ndarray]]:
    """The prediction-powered estimate per cell (ppi.py) and any extra pooling blocks: without DP
    from the exact sums; under DP from the released sums (ppi_release.py), the diary groups' sums
    released here."""
    trained, labelled = _ppi_groups(data_dir, nso, st, model)
    if st.cfg.epsilon is None:
        u_d, u_f = cell_persons(sensor, days, member, per_person_day(p_sensor.proba * st.window_minutes, days))
        return ppi.by_cell(trained, labelled, ppi.Group(u_d, f=u_f), st.day_minutes), {}
    return ppi_release.national(trained, labelled, released_minutes, st.ppi_noise_std(),
                                *st.ppi_mechanisms(), noise.generator("time-use-labelled", st.release),
                                noise.generator("time-use-trained", st.release), st.cells, st.day_minutes)


def _diary(sample: Sample, st: Setting) -> tuple[np.ndarray, np.ndarray]:
    """Minutes per day of the diary sample itself (its true labels; a comparison, not released)."""
    days = person_days(sample, st.cfg.max_days)
    onehot = np.eye(len(st.labels))[sample.y] * st.window_minutes
    return cell_sums(per_person_day(onehot, days), membership(sample, days, st.cells))


@dataclass
class National:
    """One NSO's result: its published table rows, its pooling blocks and its epsilons."""

    rows: list[dict]
    pooling: dict[str, np.ndarray]
    epsilon_sensor: float | None
    epsilon_labelled: float | None
    wellbeing: dict[str, float | None]


def estimate_national(model: torch.nn.Module, data_dir: str, nso: str, st: Setting, seed: int, noise: Randomness,
                      own: tuple[np.ndarray, object] | None, pooled_counts: np.ndarray | None = None) -> National:
    """Everything this NSO publishes; `pooled_counts` (the SecAgg+ sum of every NSO's noisy confusion
    counts) replaces its own matrix when the config asks for a pooled one; `own` = noisy_confusion's
    result, released once per estimate (None under PPI, which uses no confusion matrix)."""
    if own is None and st.cfg.resolved_estimator != "ppi":
        raise ValueError(f"estimator {st.cfg.resolved_estimator!r} needs the NSO's noisy confusion counts")
    k = len(st.labels)
    own_counts, lab = own if own is not None else (np.zeros((len(st.cells), k, k)), None)
    m = quantify.row_normalised(pooled_counts if pooled_counts is not None else own_counts)
    sensor = load_sample(Path(data_dir) / st.subdir, "sensor", nso)
    p = predict(model, sensor.x, st.wellbeing_range)
    exact, days, member = sensor_release(sensor, p, st.cells, st.cfg, st.window_minutes, st.day_bound,
                                         st.wellbeing_centre, st.wellbeing_day_bound if st.cfg.epsilon is not None else None)
    sensor_mech, labelled_mech = st.mechanisms()
    if st.pooled_only:
        return _pooled_share(data_dir, nso, st, model, exact, sensor_mech)
    implied = "person_days" not in sensor_mech.sensitivity  # PPI: the minutes imply the counts (ppi_release.py)
    if implied:
        exact.pop("person_days")
    noisy = sensor_mech.apply(exact, noise.generator("time-use-sensor", st.release))
    if implied:
        noisy["person_days"] = np.maximum(noisy["minutes"].sum(axis=1) / st.day_minutes, 0.0)
    released = Released(noisy["minutes"], noisy["person_days"], own_counts, noisy.get("wellbeing"))
    est, cc = corrected(released.minutes, released.person_days, m, st.day_minutes)
    if st.cfg.resolved_estimator == "ppi":
        ci, extra = _ppi(data_dir, nso, st, model, sensor, p, days, member, noise, released.minutes)
        est = ci.estimate
    else:
        extra = {}
        base = None if pooled_counts is None else pooled_counts - own_counts
        persons = np.array([len(np.unique(days.person[member[:, c] > 0])) for c in range(len(st.cells))])
        ci = bootstrap(released, lab, st.cells, persons, sensor_mech, labelled_mech, st.cfg.bootstrap, st.day_minutes,
                       _rng(seed, nso, "bootstrap"), base)
    diary_sums, diary_n = _diary(load_sample(Path(data_dir) / st.subdir, "diary", nso), st)
    diary = diary_sums / np.maximum(diary_n, 1)[:, None]
    rows = [{"nso": nso, "group": "all" if g == "all" else f"{g}:{c}", "activity": a, "minutes": est[i, j],
             "ci_low": ci.low[i, j], "ci_high": ci.high[i, j], "minutes_classify_count": cc[i, j],
             "minutes_diary_sample": diary[i, j]}
            for i, (g, c) in enumerate(st.cells) for j, a in enumerate(st.labels)]
    n = np.maximum(released.person_days, 1.0)
    counts_all = released.minutes[0] / st.window_minutes
    wb = released.wellbeing
    pooling = pooling_blocks(est, ci.variance, cc, n, diary_sums, diary_n, st.day_minutes)
    pooling.update(wb=wb if wb is not None else np.zeros(len(st.labels)), wb_n=counts_all, **extra)
    wellbeing = {a: (float(st.wellbeing_centre + wb[j] / counts_all[j]) if wb is not None and counts_all[j] > 0 else None)
                 for j, a in enumerate(st.labels)}
    return National(rows, pooling, sensor_mech.epsilon(), labelled_mech.epsilon(), wellbeing)


def _pooled_share(data_dir: str, nso: str, st: Setting, model, exact: dict[str, np.ndarray],
                  sensor_mech) -> National:
    """publish = "pooled": no national table; the pooling vector's DP blocks are this NSO's exact
    (clipped) sums, to which `pooled_release.pack_share` adds its share of the noise on SecAgg+'s
    grid. The blocks that pool national estimates stay zero: those estimates are not released."""
    trained, labelled = _ppi_groups(data_dir, nso, st, model)
    diary_sums, diary_n = _diary(load_sample(Path(data_dir) / st.subdir, "diary", nso), st)
    cells, k = len(st.cells), len(st.labels)
    zeros = np.zeros((cells, k))
    pooling = {"n_est": zeros, "n_cc": zeros, "n": np.zeros(cells), "n2var": zeros, "diary": diary_sums,
               "diary_n": diary_n, "wb": exact.get("wellbeing", np.zeros(k)), "wb_n": np.zeros(k),
               "ppi_sensor": exact["minutes"], "ppi_labelled_diary": labelled.y.sum(0),
               "ppi_labelled_predicted": labelled.f.sum(0), "ppi_trained": trained.y.sum(0), "ppi_nsos": np.ones(1)}
    eps = sensor_mech.epsilon()  # every group's mechanism has the release's z: one epsilon for the pooled sums
    return National([], pooling, eps, eps, {})


def pooling_blocks(est: np.ndarray, var: np.ndarray, cc: np.ndarray, n: np.ndarray, diary_sums: np.ndarray,
                   diary_n: np.ndarray, day_minutes: float) -> dict[str, np.ndarray]:
    """One NSO's share of the pooled minutes (summed over NSOs, under SecAgg+ when enabled): its
    estimates and variances weighted by its person-days `n` per cell. A cell this NSO cannot
    estimate (nan) enters with its classify-and-count figure and the widest variance a share of
    the day can have, so the pooled row stays defined."""
    missing = ~np.isfinite(est)
    est_pool = np.where(missing, cc, est)
    var_pool = np.minimum(np.where(missing, day_minutes ** 2 / 4, var), day_minutes ** 2)  # wider says no more
    return {"n_est": n[:, None] * est_pool, "n_cc": n[:, None] * cc, "n": n, "n2var": n[:, None] ** 2 * var_pool,
            "diary": diary_sums, "diary_n": diary_n}


def pooled_rows(total: dict[str, np.ndarray], st: Setting) -> tuple[list[dict], dict[str, float | None]]:
    """The pooled (nso = ALL) rows from the sum over NSOs of their pooling blocks."""
    n = np.maximum(total["n"], 1.0)[:, None]
    est, cc, sd = total["n_est"] / n, total["n_cc"] / n, np.sqrt(np.maximum(total["n2var"], 0)) / n
    low, high = np.maximum(est - ppi.Z95 * sd, 0.0), np.minimum(est + ppi.Z95 * sd, st.day_minutes)
    if st.pooled_only:  # the NSOs' exact sums with their noise shares: project, estimate, CC from the same sums
        pooled_release.check_shares(total, st)
        t = ppi_release.pooled(total, st.pooled_noise_std(), st.day_minutes, st.cells, project_sums=True)
        est, low, high = t.estimate, t.low, t.high
        sensor = ppi_release.consistency(st.cells) @ total["ppi_sensor"]
        cc = np.clip(sensor / np.maximum(sensor.sum(1, keepdims=True) / st.day_minutes, 1.0), 0.0, st.day_minutes)
        total = {**total, "wb_n": sensor[0] / st.window_minutes}
    elif "ppi_sensor" in total:  # DP PPI++: the estimate of the summed released sums, not a mean of national ones
        t = ppi_release.pooled(total, st.ppi_noise_std(), st.day_minutes, st.cells)
        est, low, high = t.estimate, t.low, t.high
    diary = total["diary"] / np.maximum(total["diary_n"], 1)[:, None]
    rows = [{"nso": "ALL", "group": "all" if g == "all" else f"{g}:{c}", "activity": a, "minutes": est[i, j],
             "ci_low": low[i, j], "ci_high": high[i, j],
             "minutes_classify_count": cc[i, j], "minutes_diary_sample": diary[i, j]}
            for i, (g, c) in enumerate(st.cells) for j, a in enumerate(st.labels)]
    wb = {a: (float(st.wellbeing_centre + total["wb"][j] / total["wb_n"][j]) if st.wellbeing_range and total["wb_n"][j] > 0
              else None)
          for j, a in enumerate(st.labels)}
    return rows, wb
