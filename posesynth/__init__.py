"""posesynth: synthetic training data for 3D human pose estimation.

Data flow: mocap files -> ``prepare`` -> training store -> ``train`` -> checkpoint
-> ``sample`` -> paired 2D/3D Zarr store.  See README.md and docs/design.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("posesynth")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
