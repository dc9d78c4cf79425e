-- 010_interval_rates.sql
-- Purpose: instantaneous sky rate of every read interval from the per-read *medians*,
--          r_k = (C_k − C_{k−1}) / (t_k − t_{k−1}) with C_k = m_k·t_k and C_0 = t_0 = 0
--          (domain reference §4), for the plain median (m_k = median_rate), the masked
--          σ-clipped sky median (sky_median) and the scattered-light boxes. Next to them the
--          median of the per-pixel rates of the same interval (inst_*), which the scan
--          measures directly: a median of differences is not a difference of medians.
-- Layer:   view over the catalog (no state). Inputs: reads. Output: view interval_rates,
--          one row per read. Parameters: none.
-- Units:   t_start, t_end, dt in s; every rate in e⁻/s (sql/README.md).
-- A row whose previous read is missing gets NULL rates (never a rate over a wrong interval).
create or replace view interval_rates as
with ordered as (
    select
        rootname,
        sampnum,
        samptime,
        routtime,
        median_rate,
        sky_median,
        left_median,
        right_median,
        inst_median,
        inst_left_median,
        inst_right_median,
        lag(sampnum) over w as prev_sampnum,
        lag(samptime) over w as prev_samptime,
        lag(median_rate) over w as prev_median_rate,
        lag(sky_median) over w as prev_sky_median,
        lag(left_median) over w as prev_left_median,
        lag(right_median) over w as prev_right_median
    from reads
    window w as (partition by rootname order by sampnum)
),

previous as (
    -- the read before read 1 is the zeroth read: t_0 = 0 and C_0 = 0
    select
        *,
        case when sampnum = 1 then true else prev_sampnum = sampnum - 1 end as has_previous,
        case when sampnum = 1 then 0.0 else prev_samptime end as t_prev,
        case when sampnum = 1 then 0.0 else prev_median_rate * prev_samptime end as c_median,
        case when sampnum = 1 then 0.0 else prev_sky_median * prev_samptime end as c_sky,
        case when sampnum = 1 then 0.0 else prev_left_median * prev_samptime end as c_left,
        case when sampnum = 1 then 0.0 else prev_right_median * prev_samptime end as c_right
    from ordered
),

final as (
    select
        rootname,
        sampnum,
        routtime,
        t_prev as t_start,
        samptime as t_end,
        samptime - t_prev as dt,
        case when has_previous
            then (median_rate * samptime - c_median) / (samptime - t_prev) end as rate_median,
        case when has_previous
            then (sky_median * samptime - c_sky) / (samptime - t_prev) end as rate_sky,
        case when has_previous
            then (left_median * samptime - c_left) / (samptime - t_prev) end as rate_left,
        case when has_previous
            then (right_median * samptime - c_right) / (samptime - t_prev) end as rate_right,
        inst_median,
        inst_left_median,
        inst_right_median
    from previous
)

select * from final
