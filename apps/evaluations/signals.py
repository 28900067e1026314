"""Signals other apps listen to (evaluations must not import them): the registry refreshes a model
version's metrics when a newer evaluation lands; sweeps advance their trials."""

from django.dispatch import Signal

# Sent after an evaluation's job ends, with `evaluation_id` and its final `status`.
evaluation_finished = Signal()
