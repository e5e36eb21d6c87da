"""The YAML files a config option names (the episode library, the judges' calibration set), read one way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from simulator.config import resolve_path
from simulator.errors import SimulatorError


def read_yaml(path: str, option: str, kind: type, what: str, fix: str) -> tuple[Path, Any]:
    """The file and its data, which must be a `kind` (dict, list); else an error that names the option or the file,
    the problem and `fix`."""
    file = resolve_path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise SimulatorError(f"{option}={path}", "", f"cannot be read ({err})", fix) from None
    if not isinstance(data, kind):
        raise SimulatorError(str(file), "(top)", f"is not {what}", fix)
    return file, data
