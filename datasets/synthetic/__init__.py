"""The simulator: NSO populations, time-use diaries, sensor features and well-being, calibrated to
the published figures of ../shared/facts (docs/data.md). It writes the same window-table format
that imported data use, so everything downstream treats both alike."""
