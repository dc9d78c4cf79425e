-- 030_exposure_metrics.sql
-- Purpose: per-exposure non-linearity metrics from the used reads of `read_metrics` (domain
--          reference §5, "candidate scores"): minimum, maximum and median instantaneous sky
--          rate, excess = max − min, ratio = max / min, the error of the excess, a χ²/dof of
--          a constant rate (error-weighted mean, per-read errors rate_err), and the spatial
--          diagnostics: largest left − right difference and ratio over the used reads and
--          the number of used reads above both spatial thresholds.
-- Layer:   view over the catalog (no state). Inputs: read_metrics. Output: view
--          exposure_metrics, one row per exposure with reads. Parameters (session variables,
--          set by `survey flag`; defaults when unset):
--            flag_lr_threshold  e⁻/s  left − right above which a read is scattered light
--                                     (default 0.1, reprocess_wfc3)
--            flag_lr_ratio      1     left / right above which a read is scattered light
--                                     (default 1.1, O'Connor notebooks)
--            flag_lr_nsigma     σ     and left − right above this many times its error
--                                     lr_err (default 3): in the 2.9-s reads of a full
--                                     frame L − R has σ ≈ 0.04 e⁻/s, in a 74² subarray
--                                     far more, so a fixed 0.1 alone would flag noise
-- Units:   rates, excess, excess_err, lr_max in e⁻/s; ratio, lr_ratio_max, chi2_dof: 1.
-- NULL when fewer than one (rates) or two (χ², dof = n − 1) reads are used.
create or replace view exposure_metrics as
with params as (
    select
        coalesce(getvariable('flag_lr_threshold'), 0.1) as lr_threshold,
        coalesce(getvariable('flag_lr_ratio'), 1.1) as lr_ratio_threshold,
        coalesce(getvariable('flag_lr_nsigma'), 3.0) as lr_nsigma
),

all_reads as (
    select
        rootname,
        count(*) as n_reads
    from read_metrics
    group by rootname
),

used as (
    select * from read_metrics where used
),

weighted as (
    select
        rootname,
        count(*) as n_used,
        min(sampnum) as first_used_read,
        min(rate) as rate_min,
        max(rate) as rate_max,
        median(rate) as rate_median,
        arg_min(rate_err, rate) as err_at_min,
        arg_max(rate_err, rate) as err_at_max,
        arg_max(sampnum, rate) as read_at_max,
        sum(rate / (rate_err * rate_err)) / sum(1.0 / (rate_err * rate_err)) as rate_mean,
        max(lr_diff) as lr_max,
        max(lr_ratio) as lr_ratio_max
    from used
    group by rootname
),

spatial as (
    select
        u.rootname,
        count(*) filter (
            where u.lr_diff > p.lr_threshold
                and u.lr_ratio > p.lr_ratio_threshold
                and u.lr_diff > p.lr_nsigma * u.lr_err
        ) as n_lr_reads
    from used as u
    cross join params as p
    group by u.rootname
),

chi2 as (
    select
        u.rootname,
        sum(power((u.rate - w.rate_mean) / u.rate_err, 2)) as chi2
    from used as u
    inner join weighted as w using (rootname)
    group by u.rootname
),

final as (
    select
        a.rootname,
        a.n_reads,
        coalesce(w.n_used, 0) as n_used,
        w.first_used_read,
        w.rate_min,
        w.rate_max,
        w.rate_median,
        w.rate_mean,
        w.rate_max - w.rate_min as excess,
        w.rate_max / nullif(w.rate_min, 0) as ratio,
        sqrt(w.err_at_min * w.err_at_min + w.err_at_max * w.err_at_max) as excess_err,
        w.read_at_max,
        c.chi2 / nullif(w.n_used - 1, 0) as chi2_dof,
        w.lr_max,
        w.lr_ratio_max,
        coalesce(s.n_lr_reads, 0) as n_lr_reads
    from all_reads as a
    left join weighted as w using (rootname)
    left join chi2 as c using (rootname)
    left join spatial as s using (rootname)
)

select * from final
