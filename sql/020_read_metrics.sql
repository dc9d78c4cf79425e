-- 020_read_metrics.sql
-- Purpose: per-read inputs of the non-linearity triage (`survey flag`): the masked, clipped
--          median of the per-pixel instantaneous rate r_k, its noise (error of a median),
--          whether the read is precise enough to use, and the spatial diagnostics of the
--          read (left − right box difference and ratio of r_k, domain reference §5).
-- Layer:   view over the catalog (no state). Inputs: reads. Output: view read_metrics, one
--          row per read. Parameters (DuckDB session variables, set by `survey flag` from its
--          options with bound values; the defaults below apply when unset):
--            flag_read_floor      e⁻/s  systematic error added in quadrature (default 0.005)
--            flag_max_read_error  e⁻/s  reads with a larger rate_err are not used (default 0.02)
-- Units:   dt in s; rates, errors and lr_diff in e⁻/s; lr_ratio dimensionless.
-- rate_err = sqrt((1.2533·inst_sigma)²/inst_nclip + floor²): 1.2533·σ/√n is the error of the
-- median of n Gaussian values. lr_err uses the pixels of one box (≈ 200/1014 of the columns):
-- sqrt(2)·1.2533·σ/√(0.197·n). The first reads of a sequence (0.1–3 s in subarrays, whose
-- per-pixel r_k has σ ≈ 300 e⁻/s) fail the rate_err limit and are not used.
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
        inst_median as rate,
        inst_sigma,
        inst_nclip,
        inst_left_median,
        inst_right_median
    from reads
    window w as (partition by rootname order by sampnum)
),

errors as (
    select
        o.*,
        sqrt(
            power(1.2533 * o.inst_sigma, 2) / nullif(o.inst_nclip, 0) + power(p.read_floor, 2)
        ) as rate_err,
        sqrt(2.0) * 1.2533 * o.inst_sigma / sqrt(nullif(0.197 * o.inst_nclip, 0)) as lr_err,
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
        inst_left_median - inst_right_median as lr_diff,
        inst_left_median / nullif(inst_right_median, 0) as lr_ratio,
        lr_err,
        coalesce(isfinite(rate) and rate_err <= max_read_error, false) as used
    from errors
)

select * from final
