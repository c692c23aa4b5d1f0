"""Time `prepare` on the whole training pool and report retargeting accuracy per source.

    python benchmarks/prepare_pool.py [DATA_DIR] [--workers 2]

Prints one JSON line for the run (files, frames, skipped, seconds) and one per
source with the retargeting accuracy that issue #3 asks for:

- ``limb_angle_deg_median``: angle between each limb (thigh, shank, upper arm,
  forearm) of the retargeted SMPL pose and the same limb of the source, median
  over limbs and frames, then over files (target <= 5 deg);
- ``shared_joint_error_mm_median`` / ``..._max_file``: mean error on the joints the
  rigs share, root-aligned on the hip midpoint, median over files and the worst
  file (targets <= 20 mm and <= 40 mm).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from posesynth.prepare import PrepareOptions, prepare, source_accuracy

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mocap"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        summary = prepare([args.data], Path(tmp) / "train.zarr", PrepareOptions(workers=args.workers), progress=False)
    print(json.dumps({"files": summary.files, "frames_in": summary.source_frames, "frames_out": summary.frames,
                      "skipped": len(summary.skipped), "seconds": round(summary.seconds, 2)}))
    for source in sorted(summary.per_source):
        acc = source_accuracy(summary, source)
        print(json.dumps({"source": source, "files": summary.per_source[source]["files"],
                          **{k: round(v, 2) for k, v in acc.items()}}))
    worst = sorted(summary.retarget.items(), key=lambda kv: -kv[1]["shared_joint_error_mm"])[:3]
    for file, r in worst:
        print(json.dumps({"worst_file": file, "shared_joint_error_mm": round(r["shared_joint_error_mm"], 1)}))


if __name__ == "__main__":
    main()
