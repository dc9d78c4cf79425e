"""`survey report`: self-contained HTML dashboards of a catalog (no network, no FITS reads).

- :mod:`survey.report.data`: read-only catalog queries (``sql/report/``) and the chart frames;
- :mod:`survey.report.charts`: pure functions from polars frames to Altair charts;
- :mod:`survey.report.page`: HTML assembly and escaping (inlined Vega bundle, ``data:`` images);
- :mod:`survey.report.build`: :func:`write_report`, the index and per-visit pages;
- :mod:`survey.report.images`: the sky histograms and PNG cutouts ``survey fix`` stores;
- :mod:`survey.report.command`: the click command (imports only click at module level).
"""

__all__ = ["ReportError", "ReportResult", "write_report"]


def __getattr__(name: str):
    """Lazy: importing :mod:`survey.report.command` (for ``survey --help``) stays light."""
    if name in __all__:
        from . import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
