"""Recipes: TOML files that fully describe a run, read into frozen dataclasses.

A recipe is a two-level table (``[section] key = value``).  The shipped file of its kind
(``posesynth/recipes/gan_default.toml``, ``sample_default.toml``, ``split_default.toml``) lists
every key with its value: it is the only place the defaults live.  ``load_recipe`` starts from it,
merges a user's file and then the ``--set section.key=value`` overrides over it, and builds the
typed recipe: a ``Recipe`` dataclass whose fields are ``Section`` dataclasses, one field per key,
each checked against its type and range (``ruled``) where it is declared.  An unknown section or
key, or a value of the wrong type or out of range, is a RecipeError naming the file (or override)
and the key.  ``Recipe.to_dict`` (plain values) is what runs record in checkpoints and stores.
"""

from __future__ import annotations

import copy
import functools
import math
import tomllib
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

from posesynth.errors import PosesynthError, os_reason


class RecipeError(PosesynthError, ValueError):
    """A recipe file or override is malformed; the message says where."""


# ---------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Rule:
    """What a recipe value must also satisfy, and how an error says it (``">= 1"``)."""

    ok: Callable[[Any], bool]
    text: str


AT_LEAST_ONE = Rule(lambda v: v >= 1, ">= 1")
POSITIVE = Rule(lambda v: v > 0, "> 0")
FRACTION = Rule(lambda v: 0 <= v < 1, "in [0, 1)")
NON_NEGATIVE = Rule(lambda v: v >= 0, ">= 0")


def ruled(rule: Rule) -> Any:
    """A section field (no default: the shipped TOML gives the value) that must pass ``rule``."""
    return field(metadata={"rule": rule})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# The kind of value each field type takes, and its name in errors; fields of other types
# (``Any``, tables) are checked by their section's ``check``.
_KINDS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    float: (_is_number, "a finite number"),
    str: (lambda v: isinstance(v, str), "text"),
    list[str]: (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of names"),
}


def kind_error(value: Any, kind: Any) -> str | None:
    """``"must be <kind>, got <value>"`` unless ``value`` is of the field type ``kind``."""
    if kind not in _KINDS:
        return None
    ok, text = _KINDS[kind]
    return None if ok(value) else f"must be {text}, got {value!r}"


def check_types(table: Mapping[str, Any], defaults: Mapping[str, Any], where: str = "",
                error: type[Exception] = RecipeError) -> None:
    """``error`` naming ``where + key`` unless every value of ``table`` has its default's type
    (bool, int, float or str; other defaults, e.g. lists, are not checked here)."""
    for key, default in defaults.items():
        problem = kind_error(table[key], type(default)) if key in table else None
        if problem:
            raise error(f"{where}{key} {problem}")


# ---------------------------------------------------------------------------- sections
class Section:
    """Base of a recipe section: a frozen dataclass whose fields are the section's keys.

    Making one checks every value against its field's type and ``ruled`` range, then ``check``
    (the rules between keys).  Subclasses set ``NAME``, the section's name in the recipe.
    """

    NAME: ClassVar[str]

    def __post_init__(self) -> None:
        for f in fields(self):
            check_value(type(self), f.name, getattr(self, f.name))
        self.check()

    def check(self) -> None:
        """RecipeError unless the keys agree with each other (nothing to check by default)."""


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """A dataclass's fields by name -> their (resolved) types."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def check_value(section: type[Section], key: str, value: Any) -> None:
    """RecipeError naming ``<section>.<key>`` unless ``value`` has the field's type and passes its rule."""
    problem = kind_error(value, _field_types(section)[key])
    rule = next(f for f in fields(section) if f.name == key).metadata.get("rule")
    if problem is None and rule is not None and not rule.ok(value):
        problem = f"must be {rule.text}, got {value!r}"
    if problem:
        raise RecipeError(f"{section.NAME}.{key} {problem}")


def check_table(section: str, table: Any, known: Iterable[str]) -> None:
    """ValueError unless ``table`` is a mapping whose keys are all in ``known``."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{section}: expected a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"{section}: unknown key(s) {unknown}; known keys: {sorted(known)}")


# ---------------------------------------------------------------------------- recipes
R = TypeVar("R", bound="Recipe")


class Recipe:
    """Base of a whole recipe: a frozen dataclass whose fields are its sections (a field typed
    ``S | None`` is a section that old recipes may lack).  A section is a ``Section``, or any
    frozen dataclass that checks itself when made (a ValueError naming ``section.key``)."""

    @classmethod
    def sections(cls) -> dict[str, tuple[type, bool]]:
        """Each section's name -> (its class, whether it may be absent)."""
        out = {}
        for name, kind in _field_types(cls).items():
            optional = get_origin(kind) in (Union, types.UnionType)
            out[name] = (next(a for a in get_args(kind) if a is not type(None)) if optional else kind, optional)
        return out

    @classmethod
    def from_dict(cls: type[R], doc: Mapping[str, Any], where: str) -> R:
        """The recipe of the document ``doc``, which must hold every key (``where`` names it in errors)."""
        sections = cls.sections()
        _refuse_unknown(where, doc, sections, "section [{}]")
        values: dict[str, Any] = {}
        for name, (section, optional) in sections.items():
            if name not in doc:
                if not optional:
                    raise RecipeError(f"{where}: missing section [{name}]")
                values[name] = None
                continue
            table = _table(doc[name], name, section, where)
            missing = [f"{name}.{k}" for k in _field_types(section) if k not in table]
            if missing:
                raise RecipeError(f"{where}: missing key(s) {', '.join(missing)}")
            try:
                values[name] = section(**table)
            except ValueError as exc:  # RecipeError included
                raise RecipeError(f"{where}: {exc}") from None
        return cls(**values)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The recipe as plain tables (what checkpoints and stores record); absent sections left out."""
        return {name: table for name, table in asdict(self).items() if table is not None}


def _table(table: Any, name: str, section: type, where: str) -> Mapping[str, Any]:
    """``table``, or a RecipeError unless it is a table of ``section``'s keys only."""
    if not isinstance(table, Mapping):
        raise RecipeError(f"{where}: [{name}] must be a table")
    _refuse_unknown(where, table, _field_types(section), f"key {name}.{{}}")
    return table


def _refuse_unknown(where: str, given: Iterable[str], known: Iterable[str], label: str) -> None:
    """RecipeError naming the first of ``given`` that is not ``known`` (``label`` formats its name)."""
    known = sorted(known)
    for name in given:
        if name not in known:
            raise RecipeError(f"{where}: unknown {label.format(name)}; known: {', '.join(known)}")


def load_recipe(cls: type[R], base: Mapping[str, Any], base_where: str, path: str | Path | None = None,
                overrides: Sequence[str] = ()) -> R:
    """``base`` (a complete recipe document: the shipped TOML) <- the file at ``path`` <- the
    ``section.key=value`` overrides, as a ``cls``; the rules between keys name ``path``."""
    return cls.from_dict(merge_recipe(cls, base, path, overrides), base_where if path is None else str(path))


def merge_recipe(cls: type[Recipe], base: Mapping[str, Any], path: str | Path | None = None,
                 overrides: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """A copy of the document ``base`` with the file at ``path`` and then the overrides merged
    over it.  Each value of a ``Section`` is checked as it is merged, so an error names the file
    or override that gave it and the key."""
    doc = copy.deepcopy({name: dict(table) for name, table in base.items()})
    layers = [] if path is None else [(str(path), read_recipe(path))]
    layers += [_override_layer(text) for text in overrides]
    sections = cls.sections()
    for where, update in layers:
        _merge(doc, update, where, sections)
    return doc


def _override_layer(text: str) -> tuple[str, dict[str, dict[str, Any]]]:
    keys, value = parse_override(text)
    if len(keys) != 2:
        raise RecipeError(f"override {text!r}: the key must be section.key")
    return f"--set {text}", {keys[0]: {keys[1]: value}}


def _merge(doc: dict[str, Any], update: Mapping[str, Any], where: str,
           sections: Mapping[str, tuple[type, bool]]) -> None:
    """``update``'s values into ``doc``, a ``Section``'s each checked against its field
    (RecipeError naming ``where``)."""
    _refuse_unknown(where, update, sections, "section [{}]")
    for name, table in update.items():
        section = sections[name][0]
        for key, value in _table(table, name, section, where).items():
            if issubclass(section, Section):
                try:
                    check_value(section, key, value)
                except RecipeError as exc:
                    raise RecipeError(f"{where}: {exc}") from None
            doc.setdefault(name, {})[key] = value


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

