-- 020_read_metrics.sql
-- Purpose: per-read inputs of the non-linearity triage (`survey flag`): the masked,
--          σ-clipped mean of the per-pixel instantaneous rate r_k, its noise (error of a
--          mean), whether the read is precise enough to use, and the spatial diagnostics of
--          the read (left − right box difference and ratio of r_k, domain reference §5).
-- Layer:   view over the catalog (no state). Inputs: reads. Output: view read_metrics, one
--          row per read. Parameters (DuckDB session variables, set by `survey flag` from its
--          options with bound values; the defaults below apply when unset):
--            flag_read_floor      e⁻/s  systematic error added in quadrature (default 0.005)
--            flag_max_read_error  e⁻/s  reads with a larger rate_err are not used (default 0.02)
-- Units:   dt in s; rates, errors and lr_diff in e⁻/s; lr_ratio dimensionless.
-- Why the mean and not the median: between two reads the counts change by a whole number of
-- DN, so in short reads (2.9 s) r_k sits on a comb ≈ gain/Δt ≈ 0.8 e⁻/s apart. The median of
-- a million such values is one tooth of the comb, off by up to half a step (0.3 e⁻/s seen on
-- clean full frames), while read noise (≈ 8 DN) dithers the comb and keeps the mean unbiased.
-- The left − right diagnostics use the boxes' means (inside the read's clipping range) too.
-- rate_err = sqrt(inst_sigma² / inst_nclip + floor²), the error of a mean of n values;
-- lr_err uses the pixels of one box (≈ 200/1014 of the columns): sqrt(2)·σ/√(0.197·n). The
-- first reads of a sequence (0.1–3 s in subarrays, whose per-pixel r_k has σ ≈ 300 e⁻/s)
-- fail the rate_err limit and are not used.
create or replace view read_metrics as
with params as (
    select
        coalesce(getvariable('flag_read_floor'), 0.005) as read_floor,
        coalesce(getvariable('flag_max_read_error'), 0.02) as max_read_error
),

ordered as (
    select
        rootname,
        sampnum,
        samptime,
        samptime - coalesce(lag(samptime) over w, 0.0) as dt,
        inst_mean as rate,
        inst_sigma,
        inst_nclip,
        inst_left_mean,
        inst_right_mean
    from reads
    window w as (partition by rootname order by sampnum)
),

errors as (
    select
        o.*,
        sqrt(
            power(o.inst_sigma, 2) / nullif(o.inst_nclip, 0) + power(p.read_floor, 2)
        ) as rate_err,
        sqrt(2.0) * o.inst_sigma / sqrt(nullif(0.197 * o.inst_nclip, 0)) as lr_err,
        p.max_read_error
    from ordered as o
    cross join params as p
),

final as (
    select
        rootname,
        sampnum,
        samptime,
        dt,
        rate,
        rate_err,
        inst_left_mean - inst_right_mean as lr_diff,
        inst_left_mean / nullif(inst_right_mean, 0) as lr_ratio,
        lr_err,
        coalesce(isfinite(rate) and rate_err <= max_read_error, false) as used
    from errors
)

select * from final
