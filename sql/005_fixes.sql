-- 005_fixes.sql
-- Purpose: the `fixes` table, one row per exposure handled by `survey fix` (its latest
--          attempt): method, engine, parameters, outputs, FLT sky statistics before (archive
--          FLT) and after, and the per-read sky series, so reports need no FITS reads.
-- Layer:   catalog (written by `survey fix`, one row per exposure, replaced on a new attempt).
-- Inputs:  none. Output: table fixes (created if missing; columns added since are added to
--          an older catalog's table, so it keeps working). Parameters: none.
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
    before_mean double,
    before_std double,
    after_median double,
    after_sigma double,
    after_bimodality double,
    after_npix integer,
    after_mean double,
    after_std double,
    survey_version varchar not null,
    fixed_at timestamp not null
);
-- the notebook window statistics: absent from the `fixes` of catalogs fixed before them
alter table fixes add column if not exists before_mean double;
alter table fixes add column if not exists before_std double;
alter table fixes add column if not exists after_mean double;
alter table fixes add column if not exists after_std double;
