"""Signals of the datasets app (apps above it listen; datasets imports none of them)."""

from django.dispatch import Signal

# Sent by `seed_datasets` after an eval set's folder is written (or found unchanged), with `folder`.
# The evaluations app loads the items into the database.
eval_set_published = Signal()
