"""Time GAN training steps and project the default recipe's training time.

    python benchmarks/train_speed.py --data train.zarr [--recipe gan_default] [--steps 200]

Prints one JSON line: ms per step (after a warm-up), the recipe's step count and the projected
minutes, with the machine's load average (other jobs on the cores slow training down).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from posesynth.gan.recipe import load_train_recipe
from posesynth.gan.train import Trainer
from posesynth.resources import recipe_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--recipe", default="gan_default", help="a TOML file or a shipped recipe's name")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    recipe = load_train_recipe(recipe_path(args.recipe))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(recipe, args.data, tmp, device=args.device)
        for _ in range(20):
            trainer.train_step()
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step()
        per_step = (time.perf_counter() - start) / args.steps
    print(json.dumps({"device": args.device, "threads": torch.get_num_threads(), "ms_per_step": round(per_step * 1000, 1),
                      "recipe_steps": recipe.train.steps,
                      "projected_minutes": round(per_step * recipe.train.steps / 60, 1),
                      "load_average": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
