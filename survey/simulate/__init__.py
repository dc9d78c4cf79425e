"""Synthetic WFC3/IR programs with known truth, for developing and testing without the archive.

Like ``photutils.datasets``: seeded generators whose every injected effect is recorded.

- :func:`simulate_program` writes IMAs (calwf3, CRCORR = OMIT), ASNs and truth tables for a
  :class:`ProgramConfig`; :func:`plan_program` shows (and lets you edit) the exposures first.
- :func:`simulate_exposure` returns one exposure in memory as a
  :class:`~survey.wfc3ir.model.Ramp` plus its :class:`ExposureTruth`.
- :func:`categorize` is the triage verdict a perfect triage gives (rule in
  :mod:`survey.simulate.truth`).

Example::

    from survey.simulate import ProgramConfig, simulate_program
    summary = simulate_program("demo", ProgramConfig(n_visits=2, size=266, seed=1))
    summary.truth.select("rootname", "filter", "he_profile", "category")

Output files are described in :mod:`survey.simulate.program`; the physics and its defaults in
:mod:`survey.simulate.config`.
"""

from .config import (
    FILTERS,
    HE_PROFILES,
    OrbitConfig,
    PhysicsConfig,
    ProgramConfig,
    SceneConfig,
    SimulationConfigError,
)
from .exposure import SimulatedExposure, simulate_exposure
from .plan import ExposureSpec, Pointing, exposure_spec, plan_program
from .program import ProgramSummary, simulate_program
from .sky import IBOHBFB9Q_HE, TimeProfile
from .truth import CATEGORIES, HE_LEVEL, SCATTERED_LEVEL, ExposureTruth, categorize

__all__ = [
    "CATEGORIES",
    "FILTERS",
    "HE_LEVEL",
    "HE_PROFILES",
    "IBOHBFB9Q_HE",
    "SCATTERED_LEVEL",
    "ExposureSpec",
    "ExposureTruth",
    "OrbitConfig",
    "PhysicsConfig",
    "Pointing",
    "ProgramConfig",
    "ProgramSummary",
    "SceneConfig",
    "SimulatedExposure",
    "SimulationConfigError",
    "TimeProfile",
    "categorize",
    "exposure_spec",
    "plan_program",
    "simulate_exposure",
    "simulate_program",
]
