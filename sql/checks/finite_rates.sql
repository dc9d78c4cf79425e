-- checks/finite_rates.sql
-- Must return no rows: the per-read statistics the triage uses are finite where present
-- (NULL means undefined, e.g. no sky pixel left), and the interval rates of the
-- `interval_rates` view are finite wherever the previous read exists.
-- Inputs: reads, interval_rates. Output: (problem, rootname, sampnum). Parameters: none.
with bad_reads as (
    select 'non-finite read statistic' as problem, rootname, sampnum
    from reads
    where not isfinite(median_rate)
        or not isfinite(median_counts)
        or not isfinite(sky_median)
        or not isfinite(sky_mean)
        or not isfinite(sky_sigma)
        or not isfinite(inst_median)
        or not isfinite(inst_mean)
        or not isfinite(inst_sigma)
),

bad_intervals as (
    select 'non-finite interval rate' as problem, rootname, sampnum
    from interval_rates
    where not isfinite(rate_median)
        or not isfinite(rate_sky)
        or not isfinite(dt)
        or dt <= 0
),

final as (
    select * from bad_reads
    union all select * from bad_intervals
)

select * from final
