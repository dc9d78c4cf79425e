"""Program planning: visits, orbits, exposure timing, names, pointings and TVB cases.

:func:`plan_program` turns a :class:`~survey.simulate.config.ProgramConfig` into a list of
:class:`ExposureSpec`, deterministically from the seed. The specs are plain frozen data: a test
or demo may ``dataclasses.replace`` one (e.g. plant a particular He I profile) and pass the list
to :func:`~survey.simulate.program.simulate_program`.

Timing: ~96-min orbits with ~59 min of target visibility; exposures are packed into orbits
in order after a guide-star (re)acquisition, so 1600-s exposures go two per orbit. He I
``rising`` goes to the last exposure of an orbit (before Earth occultation), ``decaying`` to
the first (just after shadow exit), ``step`` anywhere; limb light only to first/last
exposures. Rootnames follow HST: ``i`` + 3-char program + 2-char visit + 2-char exposure +
``q``; the association of a visit is ``i<ppp><vv>010`` (``020`` for its second filter).

Explicit :class:`~survey.simulate.config.PlantedCase` s of the config are planted first,
exactly as given; the random planting by fraction then leaves those exposures alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ..wfc3ir.detector import ZEROTH_READ_OFFSET
from ..wfc3ir.model import GRISMS, HE_I_FILTERS
from ..wfc3ir.sequences import read_times
from .config import PlantedCase, ProgramConfig, SimulationConfigError
from .sky import TimeProfile

__all__ = [
    "DIRECT_FOR_GRISM",
    "ExposureSpec",
    "Pointing",
    "exposure_spec",
    "plan_program",
    "seed_rng",
]

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
#: Direct-image filter paired with each grism, and its (SAMP_SEQ, NSAMP).
DIRECT_FOR_GRISM = {"G102": "F105W", "G141": "F140W"}
DIRECT_SEQUENCE = ("SPARS25", 11)
#: WFC3-IR-DITHER-BOX-MIN POSTARGs (arcsec) and the IR pixel scales (arcsec/px, x and y).
BOX_MIN = ((0.0, 0.0), (0.542, 0.182), (0.339, 0.485), (-0.203, 0.303))
PIXEL_SCALE = (0.1355, 0.1211)
#: Which He I shapes fit where in an orbit (He I peaks next to shadow exit and occultation).
HE_FITS = {
    "first": ("decaying", "step"),
    "last": ("rising", "step"),
    "only": ("rising", "decaying", "step"),
    "middle": ("step",),
}


def seed_rng(seed: int, *key: int) -> np.random.Generator:
    """Independent generator for one purpose, stable whatever else the program contains."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _b36(value: int, width: int) -> str:
    digits = ""
    for _ in range(width):
        value, r = divmod(value, 36)
        digits = _B36[r] + digits
    return digits


@dataclass(frozen=True)
class Pointing:
    """Target, orientation and environment keywords of one exposure."""

    targname: str
    ra: float
    dec: float
    pa_v3: float
    postarg1: float = 0.0
    postarg2: float = 0.0
    pattstep: int = 0
    sunangle: float = 90.0
    moonangl: float = 90.0
    sun_alt: float = 60.0

    @property
    def shift(self) -> tuple[float, float]:
        """Dither in pixels (x, y): a POSTARG puts the target that far from the reference."""
        return self.postarg1 / PIXEL_SCALE[0], self.postarg2 / PIXEL_SCALE[1]


@dataclass(frozen=True)
class ExposureSpec:
    """Everything that defines one simulated exposure (all times in s, rates in e-/s)."""

    rootname: str
    asn_id: str
    proposid: int
    visit: int
    exposure: int
    orbit: int
    orbit_position: str
    filter: str
    samp_seq: str
    nsamp: int
    size: int
    expstart: float
    pointing: Pointing
    zodi: float
    he: TimeProfile = field(default_factory=TimeProfile)
    scatter: TimeProfile = field(default_factory=TimeProfile)
    scatter_edge: float = 250.0
    scatter_softness: float = 60.0
    crowded: bool = False
    drizcorr: str = "PERFORM"
    scene_seed: int = 0
    noise_seed: int = 0

    @cached_property
    def times(self) -> np.ndarray:
        """Read times (s since the zeroth read), rounded to the µs like header SAMPTIMEs."""
        return np.round(read_times(self.samp_seq, self.nsamp, self.size), 6)

    @property
    def exptime(self) -> float:
        return float(self.times[-1])

    @property
    def sampzero(self) -> float:
        return round(float(self.times[1]) - ZEROTH_READ_OFFSET, 6)

    @property
    def expend(self) -> float:
        return self.expstart + self.exptime / 86400.0

    @property
    def is_grism(self) -> bool:
        return self.filter in GRISMS

    @property
    def visit_code(self) -> str:
        return self.rootname[4:6]


def _program_code(config: ProgramConfig) -> str:
    """Configured code, else one derived from PROPOSID (real codes are assigned, not derived)."""
    return config.program_code or "b" + _b36(config.proposid % 1296, 2)


def _visit_filters(config: ProgramConfig, rng: np.random.Generator) -> list[str]:
    if config.filter_mix:
        names = list(config.filter_mix)
        weights = np.array([config.filter_mix[n] for n in names], dtype=float)
        return [
            names[i] for i in rng.choice(len(names), config.n_visits, p=weights / weights.sum())
        ]
    return [config.filters[v % len(config.filters)] for v in range(config.n_visits)]


def _crowded_visits(config: ProgramConfig, rng: np.random.Generator) -> set[int]:
    if isinstance(config.crowded, bool):
        return set(range(config.n_visits)) if config.crowded else set()
    n = round(config.crowded * config.n_visits)
    return {int(v) for v in rng.permutation(config.n_visits)[:n]}


def _exposure_setups(config: ProgramConfig, v: int, filt: str) -> list[tuple[str, str, int]]:
    """(filter, SAMP_SEQ, NSAMP) per exposure of visit v; grism visits interleave direct images."""
    seq = config.samp_seq[v % len(config.samp_seq)]
    nsamp = config.nsamp[v % len(config.nsamp)]
    setups = []
    for i in range(config.visit_exposures(v)):
        if filt in GRISMS and config.grism_direct and i % 3 == 0:
            setups.append((DIRECT_FOR_GRISM[filt], *DIRECT_SEQUENCE))
        else:
            setups.append((filt, seq, nsamp))
    return setups


def _pack_orbits(config: ProgramConfig, exptimes: list[float], rng) -> list[tuple[float, int]]:
    """(start offset in s from the visit start, orbit index) per exposure, packed in order."""
    o = config.orbit
    placed, orbit, n_in_orbit = [], 0, 0
    t = o.acquisition
    for exptime in exptimes:
        if n_in_orbit and t + exptime > orbit * o.period + o.visibility:
            orbit, n_in_orbit = orbit + 1, 0
            t = orbit * o.period + o.reacquisition
        placed.append((t, orbit))
        n_in_orbit += 1
        t += exptime + rng.uniform(*o.gap)
    return placed


def _positions(orbits: list[int]) -> list[str]:
    out = []
    for i, orbit in enumerate(orbits):
        first = i == 0 or orbits[i - 1] != orbit
        last = i == len(orbits) - 1 or orbits[i + 1] != orbit
        out.append("only" if first and last else "first" if first else "last" if last else "middle")
    return out


def _pointing(rng: np.random.Generator, visit_code: str) -> Pointing:
    """A random high-latitude-like field: RA uniform, Dec uniform in sin(dec) over ±70°."""
    return Pointing(
        targname=f"SIMFIELD-{visit_code.upper()}",
        ra=round(float(rng.uniform(0.0, 360.0)), 8),
        dec=round(float(np.degrees(np.arcsin(rng.uniform(-0.94, 0.94)))), 8),
        pa_v3=round(float(rng.uniform(0.0, 360.0)), 6),
        sunangle=round(float(rng.uniform(60.0, 170.0)), 6),
        moonangl=round(float(rng.uniform(20.0, 170.0)), 6),
    )


def _exposure_codes(rng: np.random.Generator, n: int) -> list[str]:
    """Two-character exposure ids, increasing like real ones (e.g. b7, b9, bg, bk)."""
    start = int(rng.integers(10 * 36, 36 * 36 - 3 * n))
    steps = rng.integers(1, 4, n)
    return [_b36(start + int(s), 2) for s in np.cumsum(steps) - steps[0]]


def _plan_visit(config: ProgramConfig, v: int, start_mjd: float, filt: str, crowded: bool):
    """Specs of one visit with no TVB case yet (cases are planted program-wide)."""
    rng = seed_rng(config.seed, 1, v)
    code, visit_code = _program_code(config), _b36(v + 1, 2)
    setups = _exposure_setups(config, v, filt)
    placed = _pack_orbits(
        config, [float(read_times(s, n, config.size)[-1]) for _, s, n in setups], rng
    )
    positions = _positions([orbit for _, orbit in placed])
    base = _pointing(rng, visit_code)
    zodi_factor = 1.0 + config.physics.zodi_scatter * rng.uniform(-1.0, 1.0)
    codes = _exposure_codes(rng, len(setups))
    asn_order = list(dict.fromkeys(f for f, _, _ in setups))  # one association per filter
    common = {"proposid": config.proposid, "visit": v, "size": config.size, "crowded": crowded,
              "scene_seed": int(seed_rng(config.seed, 2, v).integers(2**63))}  # fmt: skip
    specs = []
    for i, (f, seq, nsamp) in enumerate(setups):
        p1, p2 = BOX_MIN[i % len(BOX_MIN)]
        sun_alt = round(float(rng.uniform(20.0, 100.0)), 6)
        specs.append(ExposureSpec(
            rootname=f"i{code}{visit_code}{codes[i]}q",
            asn_id=f"I{code}{visit_code}0{asn_order.index(f) + 1}0".upper(),
            exposure=i, orbit=placed[i][1], orbit_position=positions[i],
            filter=f, samp_seq=seq, nsamp=nsamp,
            expstart=round(start_mjd + placed[i][0] / 86400.0, 8),
            pointing=replace(base, postarg1=p1, postarg2=p2, pattstep=i % len(BOX_MIN) + 1,
                             sun_alt=sun_alt),
            zodi=round(config.physics.zodi[f] * zodi_factor, 6),
            drizcorr="OMIT" if f in GRISMS else config.drizcorr,
            noise_seed=int(seed_rng(config.seed, 3, v, i).integers(2**63)),
            **common,
        ))  # fmt: skip
    return specs


def _count(fraction: float, n: int) -> int:
    """Cases to plant: the rounded fraction, at least one when asked for and possible."""
    return 0 if fraction <= 0 or n == 0 else min(n, max(1, round(fraction * n)))


def _time_profile(rng: np.random.Generator, kind: str, exptime: float, amp: tuple) -> TimeProfile:
    """A He I or limb-light profile of the given shape, timed as a fraction of the exposure."""
    a = round(float(rng.uniform(*amp)), 4)
    if kind == "rising":  # cf. ibohbfb9q: on at ~0.12 T, rising over ~0.3 T
        t0, w = rng.uniform(0.1, 0.45), rng.uniform(0.2, 0.4)
    elif kind == "decaying":  # just after shadow exit: high at first, gone after ~0.3-0.6 T
        t0, w = rng.uniform(-0.1, 0.15), rng.uniform(0.25, 0.5)
    else:  # step: switches on between 30% and 70% of the exposure
        t0, w = rng.uniform(0.3, 0.7), rng.uniform(0.0, 0.02)
    return TimeProfile(kind, a, round(t0 * exptime, 3), round(w * exptime, 3))


def _apply_case(spec: ExposureSpec, case: PlantedCase) -> ExposureSpec:
    if case.he.active and spec.filter not in HE_I_FILTERS:
        raise SimulationConfigError(
            f"planted He I in visit {case.visit} exposure {case.exposure} ({spec.filter}): "
            f"He I 1.083 µm only reaches {', '.join(sorted(HE_I_FILTERS))}"
        )
    return replace(spec, he=case.he, scatter=case.scatter, scatter_edge=case.scatter_edge,
                   scatter_softness=case.scatter_softness)  # fmt: skip


def _plant_cases(specs: list[ExposureSpec], config: ProgramConfig) -> tuple[list, set[int]]:
    """Specs with the config's explicit cases planted, and the indices they took."""
    index = {(s.visit, s.exposure): i for i, s in enumerate(specs)}
    out, taken = list(specs), set()
    for case in config.cases:
        i = index[(case.visit, case.exposure)]  # the config checked that it exists
        out[i] = _apply_case(specs[i], case)
        taken.add(i)
    return out, taken


def _plant_scattered(
    specs: list[ExposureSpec], config: ProgramConfig, rng, taken: set[int]
) -> list[ExposureSpec]:
    phys = config.physics
    eligible = [
        i
        for i, s in enumerate(specs)
        if s.exptime >= phys.min_tvb_exptime and s.orbit_position != "middle" and i not in taken
    ]
    chosen = sorted(rng.permutation(eligible)[: _count(config.scattered_fraction, len(eligible))])
    out = list(specs)
    for i in chosen:
        s = specs[i]
        kind = {"first": "decaying", "last": "rising"}.get(s.orbit_position) or str(
            rng.choice(["rising", "decaying"])
        )
        profile = _time_profile(rng, kind, s.exptime, phys.scattered_amplitude)
        edge = round(float(rng.uniform(*phys.scattered_edge)), 2)
        softness = round(float(rng.uniform(*phys.scattered_softness)), 2)
        out[i] = replace(s, scatter=profile, scatter_edge=edge, scatter_softness=softness)
    return out


def _plant_he(
    specs: list[ExposureSpec], config: ProgramConfig, rng, taken: set[int]
) -> list[ExposureSpec]:
    """Plant He I in the rounded fraction of eligible exposures, cycling through the shapes so
    a small program still shows each one, each where it fits in its orbit."""
    phys = config.physics
    kinds = [k for k in config.he_profiles if k != "none"]
    eligible = [
        i
        for i, s in enumerate(specs)
        if s.filter in HE_I_FILTERS
        and s.exptime >= phys.min_tvb_exptime
        and not s.scatter.active
        and i not in taken
        and set(HE_FITS[s.orbit_position]) & set(kinds)
    ]
    free = [int(i) for i in rng.permutation(eligible)]
    out = list(specs)
    for j in range(_count(config.he_fraction, len(eligible))):
        wanted = kinds[j % len(kinds)]
        fitting = [i for i in free if wanted in HE_FITS[specs[i].orbit_position]]
        i = fitting[0] if fitting else free[0]
        kind = (
            wanted if fitting else next(k for k in kinds if k in HE_FITS[specs[i].orbit_position])
        )
        free.remove(i)
        out[i] = replace(specs[i], he=_time_profile(rng, kind, specs[i].exptime, phys.he_amplitude))
    return out


def plan_program(config: ProgramConfig) -> list[ExposureSpec]:
    """Every exposure of the program, in time order, with its TVB case (if any) planted."""
    rng = seed_rng(config.seed, 0)
    start = config.start_mjd if config.start_mjd is not None else 55200.0 + rng.uniform(0, 5000)
    filters = _visit_filters(config, rng)
    crowded = _crowded_visits(config, rng)
    specs: list[ExposureSpec] = []
    visit_start = float(start)
    for v in range(config.n_visits):
        specs += _plan_visit(config, v, visit_start, filters[v], v in crowded)
        visit_start = max(visit_start + rng.uniform(*config.orbit.visit_spacing_days),
                          specs[-1].expend + 0.1)  # fmt: skip
    specs, taken = _plant_cases(specs, config)
    specs = _plant_scattered(specs, config, seed_rng(config.seed, 4), taken)
    return _plant_he(specs, config, seed_rng(config.seed, 5), taken)


def exposure_spec(
    *, size: int = 266, filter: str = "F105W", samp_seq: str = "STEP200", nsamp: int = 16,
    seed: int = 0, **changes,
) -> ExposureSpec:  # fmt: skip
    """The single exposure of a one-visit program, with any spec field replaced.

    A quick way to a custom case: ``exposure_spec(he=IBOHBFB9Q_HE, zodi=0.47)``.
    """
    config = ProgramConfig(
        n_visits=1, exposures_per_visit=1, size=size, filters=(filter,), samp_seq=(samp_seq,),
        nsamp=(nsamp,), seed=seed, he_fraction=0.0, scattered_fraction=0.0, grism_direct=False,
    )  # fmt: skip
    return replace(plan_program(config)[0], **changes)
