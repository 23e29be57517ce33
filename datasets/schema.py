"""The window table format shared by simulated and imported data (docs/data_format.md).

One row is one 10-minute diary slot (HETUS: 144 slots a day from 04:00) of one person. Keeping a
single format means the generator and real NSO files go through the same validation and splits.
"""

from __future__ import annotations

SLOTS_PER_DAY = 144
SLOT_MINUTES = 10
DAY_START_HOUR = 4

# HETUS main groups as in the fact sheet; group 0 is split into sleep, eating, other personal care
# and group 8 into TV/video and reading/radio, because their sensor signatures and well-being differ.
ACTIVITIES: tuple[str, ...] = (
    "sleep",
    "eating",
    "personal_care",
    "employment",
    "study",
    "household_family",
    "voluntary_meetings",
    "social_resting",
    "sports_outdoor",
    "hobbies_computing",
    "tv_video",
    "reading_radio",
    "travel",
)
ACTIVITY_INDEX = {name: i for i, name in enumerate(ACTIVITIES)}
NUM_CLASSES = len(ACTIVITIES)

# Smartphone location type (from GPS and Wi-Fi), stored as a small integer code.
LOCATIONS: tuple[str, ...] = ("home", "work", "other_indoor", "outdoor", "vehicle")

KEY_COLUMNS: tuple[str, ...] = ("nso", "person_id", "day", "slot")

# Feature columns: float, NaN allowed (sensor missing), inf never.
FEATURE_COLUMNS: tuple[str, ...] = (
    "enmo_mean",  # wrist ENMO, mean over the slot, milli-g
    "enmo_sd",  # within-slot SD of minute-level ENMO, milli-g
    "enmo_p90",  # 90th percentile of minute-level ENMO, milli-g
    "steps_per_min",  # mean step rate over the slot
    "peak_cadence",  # cadence of the most active minute, steps/min
    "hr_pct_max",  # heart rate as a share of the age-predicted maximum (220 - age)
    "log10_lux",  # ambient light, log10(lux + 1)
    "location",  # code into LOCATIONS
    "speed_kmh",  # GPS speed
    "day_of_week",  # 0 = Monday ... 6 = Sunday
)
LABEL_COLUMN = "activity"
WELLBEING_COLUMN = "wellbeing"  # ATUS 0-6 "happy"; NaN where not rated (sleep, personal care)
REQUIRED_COLUMNS: tuple[str, ...] = KEY_COLUMNS + FEATURE_COLUMNS + (LABEL_COLUMN,)
OPTIONAL_COLUMNS: tuple[str, ...] = (WELLBEING_COLUMN,)

# Documented ranges checked by validation: (low, high) inclusive; None = unbounded.
FEATURE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "enmo_mean": (0.0, None),
    "enmo_sd": (0.0, None),
    "enmo_p90": (0.0, None),
    "steps_per_min": (0.0, 250.0),
    "peak_cadence": (0.0, 250.0),
    "hr_pct_max": (0.0, 1.2),
    "log10_lux": (0.0, 6.0),
    "location": (0, len(LOCATIONS) - 1),
    "speed_kmh": (0.0, 400.0),
    "day_of_week": (0, 6),
}
WELLBEING_RANGE = (0.0, 6.0)

# Person attributes (persons table, optional for imported data).
AGE_GROUPS: tuple[str, ...] = ("15-24", "25-44", "45-64", "65+")
SEXES: tuple[str, ...] = ("female", "male")
EMPLOYMENT: tuple[str, ...] = ("employed", "student", "not_employed")
DEVICES: tuple[str, ...] = ("actigraph", "geneactiv", "axivity")
PERSON_COLUMNS: tuple[str, ...] = ("nso", "person_id", "age_group", "age", "sex", "employment", "device")
