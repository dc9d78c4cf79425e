"""`survey flag`: rank exposures by count-rate non-linearity and give each a verdict."""

from .triage import VERDICTS, FlagError, FlagParameters, flag_catalog, query_catalog, rank

__all__ = ["VERDICTS", "FlagError", "FlagParameters", "flag_catalog", "query_catalog", "rank"]
