-- checks/monotonic_times.sql
-- Must return no rows: read times increase with sampnum within an exposure (SAMPTIME
-- strictly, ROUTTIME where present), SAMPTIME of read 1 is positive and DELTATIM is positive.
-- Inputs: reads. Output: (problem, rootname, sampnum). Parameters: none.
with ordered as (
    select
        rootname,
        sampnum,
        samptime,
        deltatim,
        routtime,
        lag(samptime) over w as prev_samptime,
        lag(routtime) over w as prev_routtime
    from reads
    window w as (partition by rootname order by sampnum)
),

final as (
    select
        case
            when samptime <= coalesce(prev_samptime, 0.0) then 'samptime not increasing'
            when routtime < prev_routtime then 'routtime decreasing'
            else 'deltatim not positive'
        end as problem,
        rootname,
        sampnum
    from ordered
    where samptime <= coalesce(prev_samptime, 0.0)
        or routtime < prev_routtime
        or deltatim <= 0
)

select * from final
