"""`survey fix`: correct flagged exposures (flatten-ramp and its alternatives), inputs untouched.

- :mod:`survey.fix.sky`: per-read sky estimators (``median``, ``clipped``, ``masked``) behind
  one small interface, the sky region and the exposure's source mask;
- :mod:`survey.fix.methods`: flatten, pop-reads and last-minus-first on in-memory ramps;
- :mod:`survey.fix.exposure`: one IMA in, FLT + IMA out (:func:`fix_exposure`);
- :mod:`survey.fix.runner` / :mod:`survey.fix.catalog`: many exposures, the ``fixes`` table;
- :mod:`survey.fix.command`: the click command (imports only click at module level).
"""

__all__ = ["ESTIMATORS", "FixParameters", "FixResult", "SkyEstimator", "fix_exposure"]

_WHERE = {"ESTIMATORS": "sky", "SkyEstimator": "sky", "FixParameters": "exposure",
          "FixResult": "exposure", "fix_exposure": "exposure"}  # fmt: skip


def __getattr__(name: str):
    """Lazy: importing :mod:`survey.fix.command` (for ``survey --help``) stays light."""
    if name in _WHERE:
        from importlib import import_module

        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
