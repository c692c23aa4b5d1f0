"""``posesynth adapt``: fit a pose GAN's samples to a target domain from its unlabelled 2D keypoints.

- ``target``: the target 2D files (``posesynth.keypoint_files``), their fully visible frames;
- ``frechet``: the Fréchet distance between sets of normalised 2D poses;
- ``views``: generated poses -> bodies -> cameras -> normalised 2D (differentiable);
- ``inversion``: the target's poses lifted through the generator (latents, one shared body);
- ``cycle``: a regressor of each keypoint's depth from 2D, trained on the lifted poses, that anchors a second lifting;
- ``viewpoint``: a regressor reading the view and the body's proportions from 2D poses;
- ``search``: the cross-entropy method;
- ``cameras``, ``bodies``: a camera distribution's ranges and a betas prior's proportions as search vectors;
- ``alignment``: both fitted to the target (the global alignment);
- ``critic3d``: the 3D GAN's discriminator from the checkpoint's training state (``--training-state``);
- ``finetune``: the generator fine-tuned against a 2D discriminator;
- ``recipe``: the adaptation recipe (``posesynth/recipes/adapt_default.toml``);
- ``state``: the state file that makes a run resumable;
- ``run``: the whole run, written as a GAN checkpoint with a latent bank and an ``adapted`` record;
- ``distance``: a sample store's distance to a target (``posesynth info --target-2d``).
"""
