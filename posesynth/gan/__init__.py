"""The pose GAN: networks, training data, training loop and checkpoints."""
