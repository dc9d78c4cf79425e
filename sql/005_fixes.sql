-- 005_fixes.sql
-- Purpose: the `fixes` table, one row per exposure handled by `survey fix` (its latest
--          attempt): method, engine, parameters, outputs, FLT sky statistics before (archive
--          FLT) and after, and the per-read sky series, so reports need no FITS reads.
-- Layer:   catalog (written by `survey fix`, one row per exposure, replaced on a new attempt).
-- Inputs:  none. Output: table fixes (created if missing). Parameters: none.
-- Units and meaning of every column: sql/README.md (section `survey fix`).
create table if not exists fixes (
    rootname varchar primary key,
    status varchar not null,
    message varchar,
    method varchar not null,
    engine varchar not null,
    sky_estimator varchar not null,
    region varchar,
    parameters varchar not null,
    params_digest varchar not null,
    ima_in varchar,
    flt_out varchar,
    ima_out varchar,
    sky_level double,
    exptime double,
    n_popped integer,
    read_times double[],
    read_sky double[],
    read_offsets double[],
    read_popped boolean[],
    before_median double,
    before_sigma double,
    before_bimodality double,
    before_npix integer,
    after_median double,
    after_sigma double,
    after_bimodality double,
    after_npix integer,
    survey_version varchar not null,
    fixed_at timestamp not null
);
