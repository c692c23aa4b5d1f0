"""The files posesynth ships inside its package and reads at run time.

They live inside the ``posesynth`` package, in a checkout as in an installed wheel, and are
found through ``importlib.resources``, never relative to the current folder:

- ``posesynth/recipes/*.toml``: the shipped recipes (``gan_default``, ``sample_default``,
  ``sample_multiview``, ``split_default``), which ``--recipe`` and ``--split`` also take by name;
- ``posesynth/recipes/cameras/*.toml``: the camera presets;
- ``posesynth/rigs/*.toml``: the rig maps;
- ``posesynth/assets/body_model/posesynth_neutral.npz`` and ``posesynth/assets/checkpoints/default.pt``:
  the default body model and checkpoint (``posesynth/assets/README.md``: how they are made, licences).

pip installs a wheel as plain files, so each of them has a path on disk.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from posesynth.config import RecipeError


def packaged_path(*parts: str) -> Path:
    """The path of the packaged file or folder ``posesynth/<parts...>``, e.g.
    ``packaged_path("recipes", "sample_default.toml")``."""
    return Path(resources.files("posesynth").joinpath(*parts))


def shipped_recipes() -> dict[str, Path]:
    """The shipped recipes by name (the file name without ``.toml``), sorted."""
    return {p.stem: p for p in sorted(packaged_path("recipes").glob("*.toml"))}


def recipe_path(name_or_path: str | Path) -> Path:
    """The recipe file ``name_or_path`` names: an existing file, else a shipped recipe's name
    (``sample_multiview``); RecipeError listing the shipped names when it is neither."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_recipes()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise RecipeError(f"{name_or_path}: no such recipe file, nor the name of a shipped recipe "
                      f"({', '.join(shipped)})")
