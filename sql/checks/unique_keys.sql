-- checks/unique_keys.sql
-- Must return no rows: every rootname and every path appears once in `exposures`, and every
-- (rootname, sampnum) once in `reads`.
-- Inputs: exposures, reads. Output: (problem, key, n). Parameters: none.
with exposure_rootnames as (
    select 'duplicate exposure rootname' as problem, rootname as key, count(*) as n
    from exposures
    group by rootname
    having count(*) > 1
),

exposure_paths as (
    select 'duplicate exposure path' as problem, path as key, count(*) as n
    from exposures
    group by path
    having count(*) > 1
),

read_keys as (
    select 'duplicate read' as problem, rootname || ' read ' || sampnum as key, count(*) as n
    from reads
    group by rootname, sampnum
    having count(*) > 1
),

final as (
    select * from exposure_rootnames
    union all select * from exposure_paths
    union all select * from read_keys
)

select * from final
