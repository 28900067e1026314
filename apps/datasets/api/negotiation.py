from types import SimpleNamespace

from rest_framework.negotiation import DefaultContentNegotiation


class ExportFormatNegotiation(DefaultContentNegotiation):
    """Export views use `?format=` for the export format (SPEC §3), not DRF's renderer override."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)
