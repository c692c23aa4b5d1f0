"""The ``posesynth`` command: a thin click layer over library functions."""

from __future__ import annotations

import click

from posesynth import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="posesynth")
def main() -> None:
    """Synthetic training data for 3D human pose estimation."""


if __name__ == "__main__":  # pragma: no cover
    main()
