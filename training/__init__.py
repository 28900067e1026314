"""tunix-rt training toolkit: pure Python + JAX, importable without Django.

Used by the Celery workers (through apps/runs), by the Kaggle notebook and by the CLI
(`python -m training ...`). Nothing in this package may import Django.
"""

__version__ = "0.1.0"
