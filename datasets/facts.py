"""Published time-use, well-being and sensor figures the generator is calibrated to.

Transcribed from shared/facts/time_use_and_sensors.md (HETUS 2010 / Eurostat tus_00age, HETUS
tempograms, ATUS well-being module 2013, Hildebrand and Doherty accelerometry, ACSM heart rate).
The tests read the fact sheet itself and compare generated data with it, so a transcription error
here shows up as a failing realism test, not as silently wrong data.
"""

from __future__ import annotations

from .schema import ACTIVITIES

COUNTRIES: tuple[str, ...] = ("DE", "FR", "IT", "ES", "PL", "FI", "UK", "NL")

# Minutes per day, all persons (HETUS 2010), in ACTIVITIES order.
_MINUTES_TABLE = {
    #                 DE   FR   IT   ES   PL   FI   UK   NL
    "sleep": (506, 510, 512, 518, 517, 515, 502, 506),
    "eating": (103, 132, 117, 119, 94, 83, 85, 117),
    "personal_care": (55, 53, 55, 51, 59, 49, 56, 53),
    "employment": (152, 147, 162, 156, 173, 144, 157, 152),
    "study": (19, 26, 26, 27, 23, 24, 22, 23),
    "household_family": (178, 186, 195, 189, 206, 176, 175, 163),
    "voluntary_meetings": (17, 12, 15, 15, 21, 18, 16, 20),
    "social_resting": (96, 79, 95, 63, 66, 72, 75, 85),
    "sports_outdoor": (28, 27, 31, 45, 24, 35, 19, 23),
    "hobbies_computing": (45, 38, 18, 31, 34, 50, 40, 55),
    "tv_video": (125, 126, 113, 139, 129, 134, 142, 120),
    "reading_radio": (37, 20, 21, 19, 27, 54, 23, 32),
    "travel": (77, 83, 79, 70, 66, 82, 129, 91),
}


def minutes_per_day(country: str) -> dict[str, float]:
    """Published minutes per activity, normalised to 1440 (columns sum to 1440-1454 by rounding)."""
    col = COUNTRIES.index(country)
    raw = {a: float(_MINUTES_TABLE[a][col]) for a in ACTIVITIES}
    total = sum(raw.values())
    return {a: v * 1440.0 / total for a, v in raw.items()}


# HETUS tempogram: share of the population in an activity group at an hour.
# (hour, activities in the group, share). "Personal care" is HETUS group 0: sleep, eating, care.
TEMPOGRAM_ANCHORS: dict[str, list[tuple[float, tuple[str, ...], float]]] = {
    "DE": [(7, ("sleep", "eating", "personal_care"), 0.54), (10, ("employment", "study"), 0.32),
           (13, ("eating",), 0.13), (20, ("eating",), 0.09), (20, ("tv_video",), 0.41)],
    "FR": [(7, ("sleep", "eating", "personal_care"), 0.63), (10, ("employment", "study"), 0.32),
           (13, ("eating",), 0.27), (20, ("eating",), 0.36), (20, ("tv_video",), 0.22)],
    "IT": [(7, ("sleep", "eating", "personal_care"), 0.59), (10, ("employment", "study"), 0.38),
           (13, ("eating",), 0.37), (20, ("eating",), 0.39), (20, ("tv_video",), 0.16)],
    "ES": [(7, ("sleep", "eating", "personal_care"), 0.77), (10, ("employment", "study"), 0.32),
           (13, ("eating",), 0.13), (20, ("eating",), 0.09), (20, ("tv_video",), 0.15)],
}

# Participation on the diary day (fact sheet: 32-37 % work, 10-25 % sport, 77-86 % TV).
WORK_MINUTES_AMONG_WORKERS = 435.0  # 6 h 43 to 7 h 44 among those who work
SPORT_PARTICIPATION = 0.18
TV_PARTICIPATION = 0.86  # flag rate; a TV day now and then has no TV slot, so ~0.80 realised

# ATUS Well-Being Module 2013, "happy" 0-6.
WELLBEING_MEAN = 4.36
WELLBEING_SD = 1.60
WELLBEING_ICC = 0.51
# DRM U-index (share of time unpleasant): higher means less happy.
U_INDEX = {"travel": 0.29, "employment": 0.27, "household_family": 0.18, "social_resting": 0.12,
           "tv_video": 0.12}
NOT_RATED = ("sleep", "personal_care")  # ATUS does not rate sleep and grooming

# ENMO cut-points, milli-g, non-dominant wrist (Hildebrand 2014/2016): light, moderate, vigorous.
ENMO_CUTPOINTS = {
    "actigraph": (44.8, 100.6, 428.8),
    "geneactiv": (45.8, 93.2, 418.3),
}
# UK Biobank (Axivity AX3): mean acceleration by age, and the slope per decade.
UKB_MEAN_ENMO = {"45-54": 31.0, "65-74": 26.0, "75-79": 23.0}
UKB_SLOPE_PER_DECADE = -2.35
UKB_BETWEEN_PERSON_SD = (7.0, 10.0)
# ACSM heart rate bands, share of HRmax = 220 - age.
HR_BANDS = {"light": (0.57, 0.63), "moderate": (0.64, 0.76), "vigorous": (0.77, 0.95)}
