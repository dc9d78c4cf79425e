-- report/reads.sql
-- Purpose: per-read sky series for the ramp and scattered-light charts of `survey report`.
-- Inputs:  reads, interval_rates, read_metrics (with the session variables of `survey flag`'s
--          thresholds set by the caller). Output: one row per read. Parameters: none.
-- Units:   samptime, t_start s; sky_median (cumulative SCI_k), rate_sky (ΔC/Δt of the
--          medians), lr_diff (left − right box means of the instantaneous rate) e⁻/s.
with final as (
    select
        r.rootname,
        r.sampnum,
        r.samptime,
        i.t_start,
        r.sky_median,
        i.rate_sky,
        m.lr_diff,
        m.used
    from reads as r
    inner join interval_rates as i using (rootname, sampnum)
    inner join read_metrics as m using (rootname, sampnum)
)

select * from final
order by rootname, sampnum
