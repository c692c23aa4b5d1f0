"""Rendering throughput: shaded 512x512 body images per second, GL path (and the fallback).

    python benchmarks/render_throughput.py [--n 256] [--size 512] [--batch 16] [--fallback 8]

Poses: ``--n`` seeded random body poses on the default body model (6,936 vertices, 13,808
faces), one random camera each (``posesynth.cameras``, close: the whole body just in frame).
What is timed, after a warm-up:

- ``gl_msaa0_images_per_s`` / ``gl_msaa4_images_per_s``: ``GLRenderer.render`` on batches of
  ``--batch`` meshes: vertex normals, vertex upload, drawing, MSAA resolve and one readback per
  batch, ending with the RGBA images in numpy.  Posing and PNG encoding are not included.
- ``pose_meshes_per_s``: the body model (smplx) posing the meshes, on its own.
- ``end_to_end_images_per_s``: posing plus GL rendering (MSAA 4), still without PNG encoding.
- ``png_encode_images_per_s``: Pillow PNG encoding alone, for reference.
- ``fallback_images_per_s``: the matplotlib renderer on ``--fallback`` images (0: skip).
- ``gl_msaa*_cpu_ms_per_image``: CPU time of this process (all its threads, llvmpipe's
  included) per image, and ``load_avg_1min``: the machine's load while it ran.  Wall-clock
  figures are only comparable on an otherwise idle machine.

Prints one JSON line.  The target is 50 images/s on 2 CPU cores with the GL path.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--fallback", type=int, default=8)
    args = ap.parse_args()

    from PIL import Image

    from posesynth import render
    from posesynth.body_model import load_body_model
    from posesynth.cameras import CameraDistribution, sample_cameras

    torch.set_num_threads(os.cpu_count() or 1)
    body = load_body_model()
    g = torch.Generator().manual_seed(0)
    n = args.n
    go = torch.zeros(n, 3)
    go[:, 1] = torch.rand(n, generator=g) * 2 * np.pi  # random heading
    bp = torch.randn(n, 69, generator=g) * 0.25
    betas = torch.randn(n, 10, generator=g) * 0.8
    with torch.no_grad():
        t0 = time.perf_counter()
        out = body(go, bp, betas)
        pose_s = time.perf_counter() - t0
    verts = out.vertices.numpy()
    dist = CameraDistribution(image_size=(args.size, args.size), distance_m=(1.5, 2.5), fov_deg=(40.0, 50.0),
                              elevation_deg=(-5.0, 25.0))  # moved back only as far as the whole body needs
    cams_t = sample_cameras(dist, out.joints.double(), g)
    cams = [render.RenderCamera(K=cams_t.K[b, 0].numpy(), R=cams_t.R[b, 0].numpy(), t=cams_t.t[b, 0].numpy(),
                                width=args.size, height=args.size) for b in range(n)]
    ok, gl_info = render.gl_available()
    result: dict[str, object] = {"images": n, "size": args.size, "batch": args.batch, "vertices": body.num_vertices,
                                 "faces": int(body.faces.shape[0]), "cpu_count": os.cpu_count(), "gl": gl_info,
                                 "pose_meshes_per_s": round(n / pose_s, 1)}
    if ok:
        for msaa in (0, 4):
            r = render.get_renderer(body.faces, body.num_vertices, "gl", samples=msaa)
            r.render(verts[:args.batch], cams[:args.batch])  # warm-up: shader compile, framebuffers
            t0, c0 = time.perf_counter(), time.process_time()
            for s in range(0, n, args.batch):
                images = r.render(verts[s:s + args.batch], cams[s:s + args.batch])
            result[f"gl_msaa{msaa}_images_per_s"] = round(n / (time.perf_counter() - t0), 1)
            result[f"gl_msaa{msaa}_cpu_ms_per_image"] = round(1000 * (time.process_time() - c0) / n, 2)
        coverage = float(np.mean([(im[..., 3] > 127).mean() for im in images]))
        result["body_pixel_fraction"] = round(coverage, 3)
        t0 = time.perf_counter()
        for s in range(0, n, args.batch):
            with torch.no_grad():
                v = body(go[s:s + args.batch], bp[s:s + args.batch], betas[s:s + args.batch]).vertices.numpy()
            images = r.render(v, cams[s:s + args.batch])
        result["end_to_end_images_per_s"] = round(n / (time.perf_counter() - t0), 1)
        t0 = time.perf_counter()
        for im in images:
            Image.fromarray(im[..., :3]).save(io.BytesIO(), format="PNG")
        result["png_encode_images_per_s"] = round(len(images) / (time.perf_counter() - t0), 1)
    if args.fallback:
        r = render.get_renderer(body.faces, body.num_vertices, "matplotlib")
        r.render(verts[:1], cams[:1])
        t0 = time.perf_counter()
        r.render(verts[:args.fallback], cams[:args.fallback])
        result["fallback_images_per_s"] = round(args.fallback / (time.perf_counter() - t0), 2)
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)  # other work on the machine slows every figure
    print(json.dumps(result))


if __name__ == "__main__":
    main()
