"""2D -> 3D lifters trained on posesynth stores: the consumers that prove the data's worth.

- ``features``: detector keypoints in pixels (plus intrinsics) -> the lifters' input, and the
  root-relative 3D they predict.
- ``models``: ``MLPLifter`` (SimpleBaseline, Martinez et al. 2017) and the conditional-GAN lifter
  (``CGANLifter``: 2D + noise -> SMPL rotations and betas -> 3D through the body model's FK; and
  its ``PairDiscriminator``).
- ``geometry``: Procrustes alignment and the camera translation that reprojects a root-relative
  pose onto its 2D.
- ``train``: ``train_lifter`` from any weighted mix of sample stores.
- ``checkpoint``: one file per lifter, loaded with ``weights_only=True``.
- ``evaluate``: MPJPE / PA-MPJPE (and best-of-K, mean-of-K, reprojection for the cGAN) on a store.
- ``predict``: 3D from a detector's keypoint file.
"""
