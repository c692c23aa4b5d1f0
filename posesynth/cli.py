"""The ``posesynth`` command: a thin click layer over library functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from posesynth import __version__


def _fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="posesynth")
def main() -> None:
    """Synthetic training data for 3D human pose estimation.

    \b
    prepare   mocap files -> training store (SMPL parameters, joints, labels, split)
    """


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Training store to write (.zarr).")
@click.option("--fps", default=30.0, show_default=True, help="Frame rate to resample every clip to.")
@click.option("--val-fraction", default=0.1, show_default=True,
              help="Fraction of each (source, content) group's files held out for validation.")
@click.option("--val-subject", "val_subjects", multiple=True, help="Hold out this whole subject (repeatable), e.g. HDM_bk.")
@click.option("--val-content", "val_contents", multiple=True, help="Hold out this whole content class (repeatable).")
@click.option("--seed", default=0, show_default=True, help="Seed of the validation split.")
@click.option("--rig", help="Rig map for every file: a built-in name (hdm05, bandai, cmu_bvh, h36m17) "
              "or a TOML path. Default: detected per file.")
@click.option("--keypoint-layout", help="Layout of keypoint arrays (.npz/.h5) without joint_names, e.g. h36m17.")
@click.option("--keypoint-up", type=click.Choice(["y", "z"]), default="y", show_default=True,
              help="Up axis of keypoint arrays.")
@click.option("--body-model", type=click.Path(exists=True, path_type=Path),
              help="SMPL-format body model (.npz, or a .pkl you trust: it is unpickled). Default: the shipped one.")
@click.option("--workers", default=2, show_default=True, help="Processes reading files in parallel.")
@click.option("--strict", is_flag=True, help="Fail on the first file that cannot be used instead of skipping it.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store at --out.")
@click.option("--summary-json", type=click.Path(path_type=Path), help="Also write the summary (and per-file retarget errors) as JSON.")
def prepare(data, out, fps, val_fraction, val_subjects, val_contents, seed, rig, keypoint_layout, keypoint_up,
            body_model, workers, strict, overwrite, summary_json) -> None:
    """Read mocap (BVH, ASF/AMC, 3D keypoint arrays) under DATA and write a training store.

    Every clip is resampled to --fps and retargeted onto SMPL's 24-joint tree with
    per-subject betas.  Files that cannot be read are skipped and listed at the end
    (or stop the run with --strict).
    """
    from posesynth.body_model import BodyModelError
    from posesynth.prepare import PrepareError, PrepareOptions, prepare as run_prepare
    from posesynth.store import StoreError

    opts = PrepareOptions(fps=fps, val_fraction=val_fraction, val_subjects=tuple(val_subjects),
                          val_contents=tuple(val_contents), seed=seed, strict=strict, workers=workers,
                          rig=rig, keypoint_layout=keypoint_layout, keypoint_up=keypoint_up)
    try:
        summary = run_prepare(data, out, opts, body_model=body_model, overwrite=overwrite,
                              progress=sys.stderr.isatty())
    except (PrepareError, StoreError, BodyModelError) as exc:
        _fail(str(exc))
    click.echo(format_prepare_summary(summary, out))
    if summary_json:
        summary_json.write_text(json.dumps(summary.__dict__, indent=1))


def format_prepare_summary(summary, out: Path) -> str:
    """The table printed at the end of ``prepare``."""
    from posesynth.prepare import source_accuracy

    lines = [f"{'source':<16}{'files':>7}{'skipped':>9}{'frames in':>11}{'frames out':>12}"
             f"{'limb deg':>10}{'joint mm':>10}{'worst mm':>10}"]
    for source, s in sorted(summary.per_source.items()):
        acc = source_accuracy(summary, source)
        lines.append(f"{source:<16}{int(s['files']):>7}{int(s.get('skipped', 0)):>9}{int(s['source_frames']):>11}"
                     f"{int(s['frames']):>12}{acc['limb_angle_deg_median']:>10.2f}"
                     f"{acc['shared_joint_error_mm_median']:>10.1f}{acc['shared_joint_error_mm_max_file']:>10.1f}")
    lines.append(f"{'total':<16}{summary.files - len(summary.skipped):>7}{len(summary.skipped):>9}"
                 f"{summary.source_frames:>11}{summary.frames:>12}")
    for path, error in summary.skipped:
        lines.append(f"skipped {path}: {error}")
    lines.append(f"wrote {out} in {summary.seconds:.1f} s")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    main()
