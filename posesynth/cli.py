"""The ``posesynth`` command: a thin click layer over library functions.

Errors are handled once, for every command, by ``PosesynthGroup``: a ``PosesynthError`` (a
problem with the input, an option or the disk, whose message names the file or option) and
an ``OSError`` no function turned into one are printed as one line, ``error: <message>``, with
exit status 1 and no traceback.  Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from posesynth import __version__
from posesynth.errors import PosesynthError, UsageError, os_reason, require_extra
from posesynth.export import FORMATS as EXPORT_FORMATS
from posesynth.resources import recipe_path
from posesynth.run_record import command_line


class CommandError(click.ClickException):
    """What the user sees of a PosesynthError: ``error: <message>`` on stderr, exit status 1."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class PosesynthGroup(click.Group):
    """The ``posesynth`` group: runs a command and turns its PosesynthError (or OSError) into a
    ``CommandError``; nested groups (``lift``) run inside it, so this covers every command.
    ``--help`` lists the commands in the order they are defined here (pipeline order), not
    alphabetically; nested groups are of this class too."""

    group_class = type  # subgroups (``lift``) are PosesynthGroups: their commands keep their order too

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def main(self, args=None, *rest, **kwargs):
        """Run the command line ``args`` (default: ``sys.argv[1:]``), which the stores and
        checkpoints it writes record (``posesynth.run_record``)."""
        with command_line(["posesynth", *(sys.argv[1:] if args is None else args)]):
            return super().main(args, *rest, **kwargs)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PosesynthError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise CommandError(where + os_reason(exc)) from None


class RecipeFile(click.ParamType):
    """A recipe option's value: a TOML file, or the name of a shipped recipe (``sample_multiview``)."""

    name = "recipe"

    def convert(self, value, param, ctx) -> Path:
        try:
            return recipe_path(value)
        except PosesynthError as exc:
            self.fail(str(exc), param, ctx)


@click.group(cls=PosesynthGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="posesynth")
def main() -> None:
    """Synthetic training data for 3D human pose estimation.

    The commands below are listed in pipeline order; `posesynth COMMAND --help` gives a
    command's options.
    """


@main.command(short_help="mocap files -> training store (SMPL poses, labels, split)")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Training store to write (.zarr).")
@click.option("--fps", default=30.0, show_default=True, help="Frame rate to resample every clip to.")
@click.option("--split", "split_recipe", type=RecipeFile(), help="Split recipe: a TOML file with a [split] table, "
              "or a shipped recipe's name. Default: split_default, the split the shipped checkpoint was trained with.")
@click.option("--val-fraction", type=float, help="Override: fraction of each (source, content) group's files held out.")
@click.option("--val-subject", "val_subjects", multiple=True,
              help="Override: hold out this whole subject (repeatable, replaces the recipe's list), e.g. HDM_bk.")
@click.option("--val-content", "val_contents", multiple=True,
              help="Override: hold out this whole content class (repeatable, replaces the recipe's list).")
@click.option("--seed", type=int, help="Override: seed of the validation split.")
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
def prepare(data, out, fps, split_recipe, val_fraction, val_subjects, val_contents, seed, rig, keypoint_layout, keypoint_up,
            body_model, workers, strict, overwrite, summary_json) -> None:
    """Read mocap (BVH, ASF/AMC, 3D keypoint arrays) under DATA and write a training store.

    Every clip is resampled to --fps and retargeted onto SMPL's 24-joint tree with
    per-subject betas.  Files that cannot be read are skipped and listed at the end
    (or stop the run with --strict).
    """
    from posesynth.outputs import check_folder, write_json
    from posesynth.prepare import PrepareOptions, load_split, prepare as run_prepare

    if summary_json:
        check_folder(summary_json.parent)
    split = load_split(split_recipe)
    opts = PrepareOptions(
        fps=fps, strict=strict, workers=workers, rig=rig, keypoint_layout=keypoint_layout, keypoint_up=keypoint_up,
        val_fraction=split.val_fraction if val_fraction is None else val_fraction,
        val_subjects=tuple(val_subjects or split.val_subjects), val_contents=tuple(val_contents or split.val_contents),
        seed=split.seed if seed is None else seed)
    summary = run_prepare(data, out, opts, body_model=body_model, overwrite=overwrite, progress=sys.stderr.isatty())
    click.echo(format_prepare_summary(summary, out))
    if summary_json:
        write_json(summary.__dict__, summary_json)


def format_prepare_summary(summary, out: Path) -> str:
    """The table printed at the end of ``prepare``."""
    from posesynth.prepare import skipped_lines, source_accuracy

    lines = [f"{'source':<16}{'files':>7}{'skipped':>9}{'frames in':>11}{'frames out':>12}"
             f"{'limb deg':>10}{'joint mm':>10}{'worst mm':>10}"]
    for source, s in sorted(summary.per_source.items()):
        acc = source_accuracy(summary, source)
        lines.append(f"{source:<16}{int(s['files']):>7}{int(s.get('skipped', 0)):>9}{int(s['source_frames']):>11}"
                     f"{int(s['frames']):>12}{acc['limb_angle_deg_median']:>10.2f}"
                     f"{acc['shared_joint_error_mm_median']:>10.1f}{acc['shared_joint_error_mm_max_file']:>10.1f}")
    lines.append(f"{'total':<16}{summary.files - len(summary.skipped):>7}{len(summary.skipped):>9}"
                 f"{summary.source_frames:>11}{summary.frames:>12}")
    lines += skipped_lines(summary)
    lines.append(f"wrote {out} in {summary.seconds:.1f} s")
    return "\n".join(lines)


@main.command(short_help="training store -> pose GAN checkpoint")
@click.option("--recipe", type=RecipeFile(),
              help="Training recipe: a TOML file or a shipped recipe's name; keys it does not list keep "
              "gan_default's values. Default: gan_default, the recipe of the shipped checkpoint.")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path), help="Training store from `prepare`.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory (resumed if it holds a run).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe entry, e.g. train.steps=500.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--body-model", type=click.Path(exists=True, path_type=Path), help="SMPL-format body model (default: shipped).")
def train(recipe, data, out, overrides, device, body_model) -> None:
    """Train the pose GAN on a training store.

    Writes OUT/recipe.toml (resolved), OUT/checkpoint.pt (for `sample`), OUT/state.pt
    (to resume: run the same command again), OUT/metrics.jsonl and OUT/curves.png.
    """
    from posesynth.devices import resolve_device
    from posesynth.gan.train import train as run_train

    checkpoint = run_train(recipe, data, out, tuple(overrides), resolve_device(device), sys.stderr.isatty(), body_model)
    click.echo(f"checkpoint: {checkpoint}")


@main.command(short_help="checkpoint vs held-out real poses: pose-quality numbers")
@click.option("--checkpoint", type=click.Path(exists=True, path_type=Path),
              help="Pose source: a GAN checkpoint (.pt) or a training store (.zarr, real poses replayed). "
              "Default: the shipped one, posesynth/assets/checkpoints/default.pt.")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="Training store whose validation split is the reference.")
@click.option("--n", "num", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Generated poses to compare.")
@click.option("--seed", default=0, show_default=True,
              help="Judge the poses `posesynth sample --seed SEED` draws from the source (before [augment]).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Also write the results as JSON.")
@click.option("--no-conditional", is_flag=True, help="Skip the per-class check of conditional sampling.")
@click.option("--plots", "plots_dir", type=click.Path(path_type=Path),
              help="Also write joint_angles.png here: per-joint angle distributions, generated vs real validation.")
@click.option("--hardness", "hardness_lifter", type=click.Path(exists=True, path_type=Path),
              help="Also report how hard each set is for this reference lifter (its MPJPE; posesynth lift train).")
def evaluate(checkpoint, data, num, seed, json_out, no_conditional, plots_dir, hardness_lifter) -> None:
    """Compare generated poses with held-out real poses (coverage, precision, novelty,
    diversity, FID, plausibility), next to the training poses and a recombination baseline."""
    from posesynth.evaluate import evaluate as run_evaluate, format_table, write_result
    from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT
    from posesynth.outputs import check_folder
    from posesynth.pose_sources import load_pose_source

    if plots_dir:
        require_extra("render", "posesynth evaluate --plots", "matplotlib")
    for folder in ([json_out.parent] if json_out else []) + ([plots_dir] if plots_dir else []):
        check_folder(folder)
    source = load_pose_source(checkpoint or DEFAULT_CHECKPOINT)
    result = run_evaluate(source, data, num, seed, not no_conditional,
                          log=lambda m: click.echo(m, err=True), hardness_lifter=hardness_lifter)
    click.echo(format_table(result))
    if json_out:
        write_result(result, json_out)
    if plots_dir:
        from posesynth.evaluate import plot_joint_angles

        click.echo(f"wrote {plot_joint_angles(source, data, plots_dir, seed)}", err=True)


@main.command(short_help="checkpoint + a domain's 2D keypoints -> adapted checkpoint")
@click.option("--checkpoint", type=click.Path(exists=True, path_type=Path),
              help="GAN checkpoint to adapt. Default: the shipped one, posesynth/assets/checkpoints/default.pt.")
@click.option("--target-2d", "target_2d", required=True, type=click.Path(exists=True, path_type=Path),
              help="The domain's 2D keypoints: a keypoint .npz or a folder of them (h36m17 or coco17, pixels "
              "with K or --normalised; docs/adapt.md).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Adapted checkpoint to write (.pt).")
@click.option("--recipe", type=RecipeFile(),
              help="Adaptation recipe: a TOML file or a shipped recipe's name. Default: adapt_default.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe entry, e.g. invert.poses=20000 or align.start=in_the_wild.")
@click.option("--seed", default=0, show_default=True, help="Seed of every random draw.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda[:N].")
@click.option("--normalised", is_flag=True, help="The target's keypoints are normalised camera coordinates.")
@click.option("--body-model", type=click.Path(exists=True, path_type=Path),
              help="SMPL-format body model the checkpoint was made with (default: the shipped one).")
@click.option("--overwrite", is_flag=True, help="Replace an existing file at --out.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run (its state is <out>.state; same arguments).")
@click.option("--training-state", type=click.Path(exists=True, path_type=Path),
              help="The checkpoint's training state (state.pt of its `posesynth train` run): its 3D discriminator "
              "then keeps the fine-tuned poses human too (finetune.critic_3d).")
def adapt(checkpoint, target_2d, out, recipe, overrides, seed, device, normalised, body_model, overwrite,
          resume, training_state) -> None:
    """Fit a GAN checkpoint to a domain from its unlabelled 2D keypoints: the domain's poses are
    lifted through the generator (a latent per pose and its joints turned past it, one body shared
    by all), then its camera
    distribution is fitted; fine-tuning the generator is optional (docs/adapt.md).

    Writes a checkpoint like any other; `posesynth sample --checkpoint OUT` draws its poses
    around the lifted ones, its bodies around the fitted body and its cameras from the adapted
    distribution (unless --recipe or --set names a camera preset), without the pool
    augmentations unless --recipe or --set turns them on.
    """
    from posesynth.adapt.recipe import load_adapt_recipe
    from posesynth.adapt.run import adapt as run_adapt, format_result
    from posesynth.devices import resolve_device
    from posesynth.outputs import check_not_an_input

    checkpoint = checkpoint or _default_checkpoint()
    check_not_an_input(out, {"--checkpoint": checkpoint, "--target-2d": target_2d, "--training-state": training_state})
    result = run_adapt(checkpoint, target_2d, out, load_adapt_recipe(recipe, overrides),
                       seed, resolve_device(device), normalised, body_model, overwrite, resume, training_state,
                       progress=sys.stderr.isatty(), log=lambda m: click.echo(m, err=True))
    click.echo(format_result(result))


@main.command(short_help="checkpoint -> sample store (paired 2D/3D, random cameras)")
@click.option("--n", "num", required=True, type=click.IntRange(min=1), help="Number of samples, e.g. 1000000.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Sample store to write (.zarr).")
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="Pose source: a GAN checkpoint (.pt) or a training store (.zarr, real poses replayed). "
              "Default: the shipped one, posesynth/assets/checkpoints/default.pt.")
@click.option("--recipe", type=RecipeFile(),
              help="Sampling recipe: a TOML file or a shipped recipe's name, e.g. sample_multiview. "
              "Default: sample_default.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe entry (value read as TOML), e.g. camera.distance_m=[3,5].")
@click.option("--label", help="Condition on this label of the source (sets sample.label).")
@click.option("--seed", default=0, show_default=True, help="Seed of every random draw.")
@click.option("--views", type=click.IntRange(min=1), help="Cameras per pose (sets camera.views).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda[:N].")
@click.option("--workers", type=click.IntRange(min=1), help="Sampling threads (default: one per CPU core; 1 on a GPU).")
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Run shard-sized tasks on a dask.distributed scheduler, or local:K for K local processes.")
@click.option("--resume", is_flag=True, help="Finish an interrupted store at --out (same arguments).")
@click.option("--overwrite", is_flag=True, help="Replace an existing store at --out.")
@click.option("--zarr-format", type=click.Choice(["2", "3"]), default="3", show_default=True,
              help="3: sharded; 2: chunks only, for old readers.")
@click.option("--body-model", type=click.Path(exists=True, path_type=Path),
              help="SMPL-format body model the source was made with (default: the shipped one).")
def sample(num, out, checkpoint, recipe, overrides, label, seed, views, device, workers, dask_address, resume,
           overwrite, zarr_format, body_model) -> None:
    """Sample poses, dress them in a body, look at them through random cameras, and write
    paired 2D/3D keypoints to a Zarr store (docs/sample_store.md).

    The same seed, source and recipe give a bitwise-identical store, whatever --workers,
    --dask or --device.  An interrupted run is finished by running it again with --resume.
    """
    from posesynth.gan.checkpoint import adapted_sampling
    from posesynth.outputs import check_not_an_input
    from posesynth.sample_recipe import resolve_sample_recipe
    from posesynth.sampling import sample_to_store

    extra = [f"sample.label={json.dumps(label)}"] if label is not None else []
    extra += [f"camera.views={views}"] if views is not None else []
    source = checkpoint or _default_checkpoint()
    check_not_an_input(out, {"--checkpoint": source})
    resolved = resolve_sample_recipe(recipe, [*overrides, *extra], adapted_sampling(source))
    summary = sample_to_store(source, out, num, seed, resolved, device=device, workers=workers,
                              dask_address=dask_address, resume=resume, overwrite=overwrite,
                              zarr_format=int(zarr_format), body_model=body_model, progress=sys.stderr.isatty())
    rate = summary.n / max(summary.seconds, 1e-9)
    click.echo(f"wrote {summary.n:,} samples to {summary.out} in {summary.seconds:.1f} s ({rate:,.0f} samples/s)"
               + (f", {summary.shards_written} shard(s) resumed" if summary.resumed else ""))


def _default_checkpoint() -> Path:
    from posesynth.gan.checkpoint import DEFAULT_CHECKPOINT

    if not DEFAULT_CHECKPOINT.is_file():
        raise UsageError(f"no default checkpoint at {DEFAULT_CHECKPOINT}: pass --checkpoint (a GAN checkpoint from "
              "`posesynth train`, or a training store to replay real poses)")
    return DEFAULT_CHECKPOINT


@main.command(short_help="what a training or sample store holds")
@click.argument("store", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@click.option("--plots", "plots_dir", type=click.Path(path_type=Path),
              help="Also write figures here: camera histograms and 2D keypoint density (sample "
              "stores), joint-angle distributions of train vs val (training stores).")
@click.option("--target-2d", "target_2d", type=click.Path(exists=True, path_type=Path),
              help="Also report the Fréchet distance of the sample store's normalised 2D to this target 2D "
              "(a keypoint .npz or a folder of them, h36m17 or coco17; docs/adapt.md).")
@click.option("--normalised", is_flag=True, help="With --target-2d: its keypoints are normalised camera coordinates.")
def info(store, as_json, plots_dir, target_2d, normalised) -> None:
    """Describe a training or sample store: counts, arrays, keypoint sets, recipe, seed,
    complete or not, size on disk and basic statistics."""
    from posesynth.info import format_info, store_info
    from posesynth.plots import write_store_plots

    if plots_dir:
        require_extra("render", "posesynth info --plots", "matplotlib")
    described = store_info(store)
    if target_2d:
        from posesynth.adapt.distance import format_distance, store_distance

        described["target_2d"] = store_distance(store, target_2d, normalised)
        if not as_json:
            click.echo(format_info(described) + "\n" + format_distance(described["target_2d"]))
            return
    click.echo(json.dumps(described, indent=1) if as_json else format_info(described))
    if plots_dir:
        for path in write_store_plots(store, plots_dir):
            click.echo(f"wrote {path}", err=True)


@main.command(short_help="sample store -> files other trainers load (--format)")
@click.argument("store", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", required=True, type=click.Choice(list(EXPORT_FORMATS)),
              help="videopose3d: data_3d_<name>.npz + data_2d_<name>_<set2d>.npz with posesynth's cameras "
              "(docs/videopose3d.md: the loader); h36m: data_3d_h36m.npz + data_2d_h36m_<name>_<set2d>.npz, "
              "Human3.6M's layout and cameras (run.py -d h36m); humandata: MMHuman3D's HumanData .npz; coco: "
              "COCO person-keypoints JSON; npz, h5: every array and the attributes.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The file (humandata, coco, npz, h5), or the folder (videopose3d, h36m).")
@click.option("--keypoint-set", default="h36m17", show_default=True,
              help="The 3D keypoint set (h36m: h36m17), and the 2D one unless --keypoint-set-2d.")
@click.option("--keypoint-set-2d", help="The 2D keypoint set, e.g. coco17 with 3D h36m17 (default: --keypoint-set).")
@click.option("--noisy", is_flag=True,
              help="The detector-like noisy 2D (videopose3d: data_2d_<name>_<set2d>_noisy.npz; not h36m).")
@click.option("--test-fraction", type=float, default=0.2, show_default=True,
              help="videopose3d, h36m: the share of samples (the store's last rows) held out as the test "
              "subjects (videopose3d: test; h36m: S9, S11).")
@click.option("--name", help="videopose3d, h36m: the dataset name in the file names (default: the store's name).")
@click.option("--overwrite", is_flag=True, help="Replace existing files at --out.")
def export(store, fmt, out, keypoint_set, keypoint_set_2d, noisy, test_fraction, name, overwrite) -> None:
    """Export a complete store for other trainers (VideoPose3D's or Human3.6M's files, HumanData, COCO,
    npz or HDF5)."""
    from posesynth.export import export_store

    paths = export_store(store, fmt, out, keypoint_set=keypoint_set, keypoint_set_2d=keypoint_set_2d, noisy=noisy,
                         test_fraction=test_fraction, name=name, overwrite=overwrite)
    click.echo("wrote " + ", ".join(str(p) for p in paths))


@main.group(short_help="2D -> 3D lifters on sample stores: train, eval, predict")
def lift() -> None:
    """2D -> 3D lifters (SimpleBaseline MLP, conditional GAN) trained on sample stores."""


@lift.command("train", short_help="weighted mix of sample stores -> lifter file")
@click.option("--data", "data_specs", required=True, multiple=True,
              help="A sample store, optionally with a mixing weight: B.zarr:3 (repeatable; default weight 1).")
@click.option("--model", type=click.Choice(["mlp", "cgan"]), default="mlp", show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Lifter file to write (.pt).")
@click.option("--steps", type=int, help="Training steps (default 20000).")
@click.option("--keypoint-set", type=click.Choice(["h36m17", "coco17", "smpl24"]), help="Default h36m17.")
@click.option("--noisy", is_flag=True, help="Train on the stores' detector-noise 2D.")
@click.option("--seed", type=int, help="Seed of initialisation and batch order (default 0).")
@click.option("--set", "overrides", multiple=True,
              help="Any other setting of posesynth.lifting.LifterConfig, e.g. width=512 or hypotheses=8.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1 or auto.")
@click.option("--overwrite", is_flag=True, help="Replace an existing lifter file at --out.")
def lift_train(data_specs, model, out, steps, keypoint_set, noisy, seed, overrides, device, overwrite) -> None:
    """Train a lifter on a weighted mix of sample stores; write it to --out."""
    from posesynth.config import parse_override
    from posesynth.devices import resolve_device
    from posesynth.lifting.checkpoint import LifterConfig, save_lifter
    from posesynth.lifting.train import parse_data_spec, train_lifter
    from posesynth.outputs import check_output

    settings = {".".join(keys): value for keys, value in map(parse_override, overrides)}
    given = {"model": model, "steps": steps, "keypoint_set": keypoint_set, "seed": seed, "noisy": noisy or None}
    settings |= {k: v for k, v in given.items() if v is not None}
    config = LifterConfig.with_overrides(LifterConfig(), settings)
    data = [parse_data_spec(spec) for spec in data_specs]
    check_output(out, overwrite)
    lifter = train_lifter(config, data, resolve_device(device), progress=sys.stderr.isatty())
    save_lifter(out, lifter, overwrite)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in lifter.training["final_losses"].items())
    click.echo(f"wrote {out} ({config.model}, {config.steps} steps; last batch: {losses})")


@lift.command("eval", short_help="a lifter on a store: MPJPE, PA-MPJPE (mm)")
@click.argument("lifter_path", metavar="LIFTER", type=click.Path(path_type=Path))
@click.option("--data", "store", required=True, type=click.Path(exists=True, path_type=Path), help="A sample store.")
@click.option("--hypotheses", default=5, show_default=True, type=click.IntRange(min=1),
              help="cGAN: hypotheses per input for best/mean-of-K.")
@click.option("--noisy", is_flag=True, help="Lift the store's detector-noise 2D.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Also write the numbers as JSON.")
def lift_eval(lifter_path, store, hypotheses, noisy, json_out) -> None:
    """MPJPE and PA-MPJPE (mm) of a lifter on a store, overall and per label; for a cGAN also
    best-of-K, mean-of-K and the reprojection error (px)."""
    from posesynth.lifting.checkpoint import load_lifter
    from posesynth.lifting.evaluate import evaluate_lifter, format_evaluation
    from posesynth.outputs import check_folder, write_json

    if json_out:
        check_folder(json_out.parent)
    lifter = load_lifter(lifter_path)
    result = evaluate_lifter(lifter, store, hypotheses, noisy, progress=sys.stderr.isatty())
    click.echo(format_evaluation(result, f"{lifter_path} on {store} ({lifter.config.model}, errors in mm)"))
    if json_out:
        write_json(result, json_out)


@lift.command("predict", short_help="detector 2D keypoints -> 3D (and SMPL)")
@click.argument("lifter_path", metavar="LIFTER", type=click.Path(path_type=Path))
@click.option("--keypoints", required=True, type=click.Path(exists=True, path_type=Path),
              help="Detector 2D (.npz: keypoints (N, J, 2) pixels with K, or normalised; see posesynth.lifting.predict).")
@click.option("--out", type=click.Path(path_type=Path), help="Output .npz (default: <keypoints>_3d.npz).")
@click.option("--normalised", is_flag=True, help="The keypoints are normalised camera coordinates ((u - cx) / fx, ...).")
@click.option("--hypotheses", default=0, show_default=True, type=click.IntRange(min=0),
              help="cGAN: also write this many hypotheses per frame.")
@click.option("--seed", default=0, show_default=True, help="Seed of the hypotheses' noise.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file at --out.")
def lift_predict(lifter_path, keypoints, out, normalised, hypotheses, seed, overwrite) -> None:
    """Lift a detector's 2D keypoints to root-relative camera-frame 3D (and SMPL for a cGAN)."""
    from posesynth.lifting.checkpoint import load_lifter
    from posesynth.lifting.predict import predict_file
    from posesynth.outputs import check_not_an_input, check_output

    out = out or keypoints.with_name(keypoints.stem + "_3d.npz")
    check_not_an_input(out, {"--keypoints": keypoints, "LIFTER": lifter_path})
    out = check_output(out, overwrite)
    n = predict_file(load_lifter(lifter_path), keypoints, out, normalised, hypotheses, seed, overwrite)
    click.echo(f"wrote {out} ({n} frames)")



@main.command(short_help="store or checkpoint -> PNG grid of bodies and keypoints")
@click.argument("store", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="PNG grid to write.")
@click.option("--index", "indices", default="0:16", show_default=True,
              help="Samples of STORE to draw: I, I,J,K or A:B[:STEP] (mixable: 0,5,10:20).")
@click.option("--checkpoint", type=click.Path(exists=True, path_type=Path),
              help="Draw fresh samples from this checkpoint instead of a store.")
@click.option("--n", "num", default=16, show_default=True, type=click.IntRange(min=1),
              help="With --checkpoint: how many samples.")
@click.option("--label", help="With --checkpoint: condition on this label.")
@click.option("--seed", default=0, show_default=True, help="With --checkpoint: the sampling seed.")
@click.option("--recipe", type=RecipeFile(),
              help="With --checkpoint: the sampling recipe, a TOML file or a shipped recipe's name "
              "(default: sample_default).")
@click.option("--view", type=click.Choice(["camera", "front", "side", "top"]),
              help="Each sample's own camera, or a canonical view of the body "
              "(default: camera when the samples have cameras, else front).")
@click.option("--camera-view", default=0, show_default=True, help="Which of a sample's V camera views to use.")
@click.option("--set", "keypoint_set", default="smpl24", show_default=True,
              help="Keypoint set drawn on top (smpl24, h36m17, coco17, ...); 'none' draws none.")
@click.option("--body-model", type=click.Path(exists=True, path_type=Path),
              help="SMPL-format body model (.npz, or a .pkl you trust: it is unpickled). Default: the shipped one.")
@click.option("--size", default=512, show_default=True, help="Grid cell size in pixels (cells are square).")
@click.option("--cols", type=int, help="Grid columns (default: about square).")
@click.option("--renderer", type=click.Choice(["auto", "gl", "matplotlib"]), default="auto", show_default=True,
              help="auto: GL (headless EGL) when a context can be made, else the matplotlib fallback.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file at --out.")
def render(store, out, indices, checkpoint, num, label, seed, recipe, view, camera_view, keypoint_set, body_model,
           size, cols, renderer, overwrite) -> None:
    """Draw a grid of posed bodies with their 2D keypoints and skeleton on top.

    From STORE (a sample store: each sample through its own camera; a training store: canonical
    views), or from --checkpoint: the first --n samples `posesynth sample` would write with the
    same checkpoint, --seed and --recipe, computed in memory.  Each cell frames its body.
    Clean 2D keypoints are blue, noisy 2D (when the store has them) red; keypoints not visible
    (not in frame or self-occluded) are hollow rings; a legend under the grid says so.
    """
    from posesynth.outputs import check_not_an_input
    from posesynth.render import render_checkpoint, render_store

    require_extra("render", "posesynth render", "PIL", "moderngl", "matplotlib")
    if (store is None) == (checkpoint is None):
        raise UsageError("give either a STORE or --checkpoint")
    check_not_an_input(out, {"STORE": store, "--checkpoint": checkpoint})
    kp = None if keypoint_set.lower() == "none" else keypoint_set
    if store is not None:
        path = render_store(store, out, indices, view, kp, body_model, size, cols, renderer, camera_view, overwrite,
                            progress=sys.stderr.isatty())
    else:
        path = render_checkpoint(checkpoint, out, num, label, seed, view, kp, body_model, size, cols, renderer,
                                 recipe, overwrite, progress=sys.stderr.isatty())
    click.echo(f"wrote {path}")


@main.command("export-mesh", short_help="store samples -> posed meshes (OBJ, PLY, GLB)")
@click.argument("store", type=click.Path(exists=True, path_type=Path))
@click.option("--index", "indices", default="0", show_default=True, help="Samples: I, I,J,K or A:B[:STEP].")
@click.option("--format", "fmt", type=click.Choice(["obj", "ply", "glb"]),
              help="File format (default: from --out's suffix).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The file (one sample, or --scene), else a folder for sample_<index>.<format> files.")
@click.option("--frame", type=click.Choice(["world", "camera"]), default="world", show_default=True,
              help="world: metres, +y up, floor at y = 0; camera: the sample's OpenCV camera frame "
              "(x right, y down, z forward).")
@click.option("--camera-view", default=0, show_default=True, help="With --frame camera: which of the V views.")
@click.option("--scene", is_flag=True, help="One file holding all the samples, laid out in a row.")
@click.option("--spacing", default=1.0, show_default=True, help="With --scene: metres between samples (0: in place).")
@click.option("--body-model", type=click.Path(exists=True, path_type=Path),
              help="SMPL-format body model (.npz, or a .pkl you trust: it is unpickled). Default: the shipped one.")
@click.option("--overwrite", is_flag=True, help="Replace existing mesh files.")
def export_mesh(store, indices, fmt, out, frame, camera_view, scene, spacing, body_model, overwrite) -> None:
    """Write the posed body meshes of samples of STORE (OBJ, PLY or GLB, with trimesh)."""
    from posesynth.mesh_export import export_meshes

    paths = export_meshes(store, indices, out, fmt, frame, scene, camera_view, body_model, spacing, overwrite)
    click.echo(f"wrote {len(paths)} file{'s' if len(paths) != 1 else ''}: " + ", ".join(str(p) for p in paths[:4])
               + (" ..." if len(paths) > 4 else ""))


if __name__ == "__main__":  # pragma: no cover
    main()
