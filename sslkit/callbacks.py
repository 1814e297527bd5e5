"""Hooks into the training loop: observe a step, change its loss, inject a fault.

``sk.fit(..., callbacks=[...])`` calls each callback's methods at these points (the ``loop``
argument is the running ``sslkit.engine.Loop``: ``loop.epoch``, ``loop.batch`` (the step's
index within the epoch), ``loop.ctx.step`` (steps done in the run), ``loop.method``, ``loop.cfg``):

* ``on_batch_start(loop)``: before a step (raise here to interrupt a run at a chosen step);
* ``on_loss(loop, loss, logs)``: after the forward pass, before ``backward``; return a tensor
  to train on that loss instead (None keeps it);
* ``on_batch_end(loop, loss, logs)``: after the optimiser step and the method's ``on_step_end``;
* ``on_epoch_end(loop, record)``: after an epoch's monitors, before its checkpoint.

Chapters record every step's loss this way, and tests interrupt runs or poison a loss.
"""

from __future__ import annotations


class Callback:
    """Base class: every hook does nothing."""

    def on_batch_start(self, loop) -> None:
        pass

    def on_loss(self, loop, loss, logs):
        return None

    def on_batch_end(self, loop, loss, logs) -> None:
        pass

    def on_epoch_end(self, loop, record: dict) -> None:
        pass


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_loss=lambda loop, loss, logs: ...)``."""

    def __init__(self, on_batch_start=None, on_loss=None, on_batch_end=None, on_epoch_end=None):
        self._hooks = {"on_batch_start": on_batch_start, "on_loss": on_loss, "on_batch_end": on_batch_end,
                       "on_epoch_end": on_epoch_end}

    def on_batch_start(self, loop) -> None:
        if self._hooks["on_batch_start"]:
            self._hooks["on_batch_start"](loop)

    def on_loss(self, loop, loss, logs):
        return self._hooks["on_loss"](loop, loss, logs) if self._hooks["on_loss"] else None

    def on_batch_end(self, loop, loss, logs) -> None:
        if self._hooks["on_batch_end"]:
            self._hooks["on_batch_end"](loop, loss, logs)

    def on_epoch_end(self, loop, record: dict) -> None:
        if self._hooks["on_epoch_end"]:
            self._hooks["on_epoch_end"](loop, record)


class StepLosses(Callback):
    """Keeps every step's loss (detached, on the device): ``.losses``."""

    def __init__(self):
        self.losses = []

    def on_loss(self, loop, loss, logs):
        self.losses.append(loss.detach())
        return None
