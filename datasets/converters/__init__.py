"""Converters from public sensor datasets to the window-table format, with a schema of their own.

Each converter reads data that a package on the package registry ships inside its wheel (nothing
is downloaded at run time) and returns a Dataset; `ppml data convert NAME --out DIR` writes it.
"""

from __future__ import annotations

# name -> "module:function", imported only when chosen
CONVERTERS: dict[str, str] = {
    "seglearn-watch": "datasets.converters.seglearn_watch:convert",
    "seglearn-watch-recordings": "datasets.converters.seglearn_watch:convert_recordings",
}
