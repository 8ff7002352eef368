"""The per-epoch work around :meth:`Trainer.fit`, in one place for the CLI, the demo and the Python API: validation
(paired files or the unpaired proxy), TensorBoard, and ``MODEL_CARD.md``, each on rank 0 after every epoch.

    trainer = Trainer(cfg, t1, t2, "runs/mine")
    hooks = EpochHooks(trainer, sources=("t1/", "t2/"))
    trainer.fit(on_epoch=hooks)
    hooks.finish(trainer)   # the final model card; closes TensorBoard
"""

from __future__ import annotations


class EpochHooks:
    """After every epoch: validation (``validation``: from :func:`mri_cyclegan.validation.make_validation`), TensorBoard
    (``tensorboard=True``), the model card (always; ``sources`` names the training data in it)."""

    def __init__(self, trainer, validation=None, tensorboard: bool = False, sources: tuple[str, str] = ("", "")) -> None:
        self.sources = sources
        self.validation, self.board = None, None
        if validation is not None:
            from .validation import EpochValidation

            self.validation = EpochValidation(validation, trainer.run_dir)
        if tensorboard:
            from .tensorboard import TensorBoardLog

            self.board = TensorBoardLog(trainer.layout[trainer.layout.TENSORBOARD])

    def __call__(self, trainer) -> None:
        scores = self.validation(trainer) if self.validation is not None else None
        if self.board is not None:
            self.board.epoch(trainer, scores)
        self.card(trainer)

    def card(self, trainer) -> None:
        from .model_card import write_model_card

        rows = self.validation.rows() if self.validation is not None else None
        paired = self.validation is None or self.validation.validation.paired
        write_model_card(trainer.run_dir, trainer.config, trainer.t1.summary(), trainer.t2.summary(), trainer.epoch, trainer.step,
                         trainer.elapsed, rows, paired=paired, device=f"{trainer.device}, {trainer.precision}", sources=self.sources,
                         drifts=trainer.drifts, pairs_summary=trainer.paired_batches.pairs.t1.summary() if trainer.paired_batches else None)

    def finish(self, trainer) -> None:
        self.card(trainer)
        if self.board is not None:
            self.board.close()
