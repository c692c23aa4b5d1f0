"""Shared fixtures: the committed real mocap clips and the shipped body model."""

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples, so a red build is reproducible
# and never a lucky draw; locally they explore new examples on every run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

FIXTURES = Path(__file__).parent / "fixtures"
POOL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mocap"

KICK_LEFT = FIXTURES / "hdm05" / "kickLFront1Reps" / "HDM_bd_kickLFront1Reps_003_120.amc"
BANDAI_DASH = FIXTURES / "bandai_namco" / "dataset-1" / "dataset-1_dash_normal_001.bvh"
BANDAI_RAISE_LEFT = FIXTURES / "bandai_namco" / "dataset-2" / "dataset-2_raise-up-left-hand_active_003.bvh"


@pytest.fixture(scope="session")
def body():
    from posesynth.body_model import load_body_model

    return load_body_model()


@pytest.fixture(scope="session")
def shape_basis(body):
    template, dirs = body.joint_shape_basis()
    return template.double().numpy(), dirs.double().numpy()


def needs_pool():
    return pytest.mark.skipif(not POOL.is_dir(), reason=f"the full training pool is not at {POOL}")


@pytest.fixture(scope="session")
def real_poses(shape_basis):
    """Local rotations (N, 24, 3, 3), float32, of the HDM05 kick and the Bandai Namco dash clips,
    retargeted to SMPL."""
    import torch

    from posesynth.mocap import read_motion
    from posesynth.retarget import retarget
    from posesynth.rig_map import detect_rig

    clips = []
    for path in (KICK_LEFT, BANDAI_DASH):
        motion = read_motion(path)
        bound = detect_rig(motion.joint_names).bind(motion.joint_names)
        frames, mask = bound.frame_rotations(motion.rotations)
        r = retarget(bound.targets(motion.positions), *shape_basis, frames, mask)
        clips.append(torch.cat([r.global_orient[:, None], r.body_pose], 1).float())
    return torch.cat(clips)
