-- 002_reads.sql
-- Purpose: the `reads` table, one row per non-zeroth read of each exposure (time order,
--          sampnum 1 … NSAMP−1): times, the exact pstat-equivalent median, and the masked
--          cumulative (SCI_k) and per-pixel instantaneous (r_k) sky statistics.
-- Layer:   catalog (written by `survey scan` with its exposure, in the same transaction).
-- Inputs:  none. Output: table reads (created if missing). Parameters: none.
-- Units and meaning of every column: sql/README.md.
create table if not exists reads (
    rootname varchar not null,
    sampnum integer not null,
    samptime double not null,
    deltatim double,
    routtime double,
    median_rate double,
    median_counts double,
    sky_npix integer,
    sky_p16 double,
    sky_p50 double,
    sky_p84 double,
    sky_median double,
    sky_mean double,
    sky_sigma double,
    sky_nclip integer,
    left_median double,
    right_median double,
    left_mean double,
    right_mean double,
    quad_a_median double,
    quad_b_median double,
    quad_c_median double,
    quad_d_median double,
    inst_npix integer,
    inst_p16 double,
    inst_p50 double,
    inst_p84 double,
    inst_median double,
    inst_mean double,
    inst_sigma double,
    inst_nclip integer,
    inst_left_median double,
    inst_right_median double,
    inst_left_mean double,
    inst_right_mean double,
    inst_quad_a_median double,
    inst_quad_b_median double,
    inst_quad_c_median double,
    inst_quad_d_median double,
    frac_dq_8192 double,
    frac_dq_32 double,
    n_nan integer,
    primary key (rootname, sampnum)
);
-- the box means (scan algorithm 2): absent from the reads of catalogs scanned before them; a
-- rescan (automatic: the scan parameters' digest changed) fills them
alter table reads add column if not exists left_mean double;
alter table reads add column if not exists right_mean double;
alter table reads add column if not exists inst_left_mean double;
alter table reads add column if not exists inst_right_mean double;
