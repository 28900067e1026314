"""Signals other apps listen to (runs must not import them): evaluations queue one when a run
completes; sweeps advance their trials."""

from django.dispatch import Signal

# Sent after a run's job ends, with `run_id` and its final `status`.
training_run_finished = Signal()
