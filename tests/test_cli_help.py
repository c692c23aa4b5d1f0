"""``posesynth --help``: one listing of the commands, click's, in pipeline order, with one-liners."""

import re

from click.testing import CliRunner

from posesynth.cli import main

PIPELINE = ["prepare", "train", "evaluate", "adapt", "sample", "info", "export", "lift", "render", "export-mesh"]


def listed(args):
    """(name, one-liner) of each row of the Commands section of ``posesynth ARGS --help``."""
    res = CliRunner().invoke(main, [*args, "--help"], terminal_width=100)
    assert res.exit_code == 0, res.output
    assert res.output.count("Commands:") == 1
    section = res.output.split("Commands:\n", 1)[1]
    return re.findall(r"^  (\S+) +(\S.*)$", section, flags=re.MULTILINE), res.output


def test_help_lists_every_command_once_in_pipeline_order():
    rows, text = listed([])
    assert [name for name, _ in rows] == PIPELINE
    for name in PIPELINE:
        assert len(re.findall(rf"^\s+{re.escape(name)}\s", text, flags=re.MULTILINE)) == 1, name


def test_each_command_has_a_one_liner_that_is_not_cut_short():
    rows, _ = listed([])
    assert dict(rows)["prepare"] == "mocap files -> training store (SMPL poses, labels, split)"
    assert all(help_text and not help_text.endswith("...") for _, help_text in rows)


def test_lift_lists_its_commands_in_workflow_order():
    rows, _ = listed(["lift"])
    assert [name for name, _ in rows] == ["train", "eval", "predict"]
