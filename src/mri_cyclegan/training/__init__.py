"""Training: one readable train step, checkpoints, LR schedule, image pool."""
