"""Recipes: TOML files that fully describe a run, with ``--set key=value`` overrides.

A recipe is a two-level table (``[section] key = value``).  ``resolve_recipe`` starts
from a module's defaults, applies the file and then the overrides, and refuses
unknown sections or keys, so a typo never passes silently.  The resolved recipe is
what runs record (in checkpoints and stores).
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from posesynth.errors import PosesynthError, os_reason


class RecipeError(PosesynthError, ValueError):
    """A recipe file or override is malformed; the message says where."""


def check_table(section: str, table: Any, known: Iterable[str]) -> None:
    """ValueError unless ``table`` is a mapping whose keys are all in ``known``."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{section}: expected a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"{section}: unknown key(s) {unknown}; known keys: {sorted(known)}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.steps=100"`` -> (["train", "steps"], 100); the value is read as TOML
    (``[1, 2]``, ``true``, ``"x"``), or kept as a bare string if it is not TOML."""
    if "=" not in text:
        raise RecipeError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def _merge(base: dict[str, Any], update: Mapping[str, Any], where: str) -> None:
    for section, table in update.items():
        if section not in base:
            raise RecipeError(f"{where}: unknown section [{section}]; known: {', '.join(sorted(base))}")
        if not isinstance(table, Mapping):
            raise RecipeError(f"{where}: [{section}] must be a table")
        for key, value in table.items():
            if key not in base[section]:
                raise RecipeError(f"{where}: unknown key {section}.{key}; known: {', '.join(sorted(base[section]))}")
            base[section][key] = value


def resolve_recipe(defaults: Mapping[str, Mapping[str, Any]], path: str | Path | None = None,
                   overrides: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Defaults <- recipe file <- overrides, validated against the defaults' keys."""
    recipe = copy.deepcopy({k: dict(v) for k, v in defaults.items()})
    if path is not None:
        _merge(recipe, read_recipe(path), str(path))
    for text in overrides:
        keys, value = parse_override(text)
        if len(keys) != 2:
            raise RecipeError(f"override {text!r}: the key must be section.key")
        _merge(recipe, {keys[0]: {keys[1]: value}}, f"--set {text}")
    return recipe


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The TOML document of the recipe file at ``path``; RecipeError naming the file if it is
    missing, unreadable, not text or not TOML."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe not found") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not a TOML recipe: not UTF-8 text (byte {exc.start}; a binary file?)") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the recipe: {os_reason(exc)}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from None


def check_types(table: Mapping[str, Any], defaults: Mapping[str, Any], where: str = "",
                error: type[Exception] = RecipeError) -> None:
    """``error`` naming ``where + key`` unless every value of ``table`` has its default's kind:
    true/false for a bool, a whole number for an int, a finite number for a float, text for a
    string (other defaults, e.g. lists, are not checked here)."""
    for key, default in defaults.items():
        if key not in table:
            continue
        value = table[key]
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            kind = "a finite number"
        elif isinstance(default, str):
            ok, kind = isinstance(value, str), "text"
        else:
            continue
        if not ok:
            raise error(f"{where}{key} must be {kind}, got {value!r}")
