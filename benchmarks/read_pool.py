"""Read every .bvh/.amc file under a folder with ``posesynth.mocap.read_motion`` and time it.

    python benchmarks/read_pool.py [DATA_DIR]

DATA_DIR defaults to ``../shared/data/mocap`` relative to the repository root.  Prints one JSON
line ``{"files", "frames", "seconds", "frames_per_s", "failures"}``; then one line per failure
(``path: error``) on stderr.  Exits 1 if any file failed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from posesynth.mocap import MocapFormatError, find_motion_files, read_motion

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mocap"


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else DEFAULT_DATA
    if not root.is_dir():
        print(f"no such folder: {root}", file=sys.stderr)
        return 2
    files = find_motion_files(root)
    frames = 0
    failures: list[str] = []
    t0 = time.perf_counter()
    for f in files:
        try:
            frames += read_motion(f).num_frames
        except MocapFormatError as e:
            failures.append(str(e))
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "files": len(files),
                "frames": frames,
                "seconds": round(seconds, 3),
                "frames_per_s": round(frames / seconds) if seconds > 0 else None,
                "failures": len(failures),
            }
        )
    )
    for msg in failures:
        print(msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
