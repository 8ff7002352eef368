"""Learning-rate schedules as pure functions."""


def lr_factor(step: int, constant_steps: int, decay_steps: int) -> float:
    """1 for the first ``constant_steps``, then linear decay reaching 0 after ``decay_steps`` more.

    The reference CycleGAN does the same per epoch (100 constant + 100 decay); here per iteration.
    """
    if step < constant_steps:
        return 1.0
    if decay_steps <= 0:
        return 0.0
    return max(0.0, 1.0 - (step - constant_steps + 1) / decay_steps)


def lr_factor_time(elapsed: float, budget: float, constant_fraction: float) -> float:
    """The same shape over wall-clock time: 1 for the first ``constant_fraction`` of ``budget`` seconds,
    then linear decay reaching 0 when the budget is spent."""
    if budget <= 0:
        raise ValueError("budget must be > 0")
    p = elapsed / budget
    if p < constant_fraction:
        return 1.0
    if constant_fraction >= 1:
        return 0.0
    return max(0.0, 1.0 - (p - constant_fraction) / (1.0 - constant_fraction))
