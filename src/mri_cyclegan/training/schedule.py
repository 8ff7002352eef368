"""Learning-rate schedule as a pure function."""


def lr_factor(step: int, constant_steps: int, decay_steps: int) -> float:
    """1 for the first ``constant_steps``, then linear decay reaching 0 after ``decay_steps`` more.

    The reference CycleGAN does the same per epoch (100 constant + 100 decay); here per iteration.
    """
    if step < constant_steps:
        return 1.0
    if decay_steps <= 0:
        return 0.0
    return max(0.0, 1.0 - (step - constant_steps + 1) / decay_steps)
