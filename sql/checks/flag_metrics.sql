-- checks/flag_metrics.sql
-- Must return no rows: `exposure_metrics` has one row per exposure with reads, and its
-- metrics are consistent (excess ≥ 0, ratio ≥ 1 for positive rates, finite χ²/dof ≥ 0,
-- no more used reads than reads).
-- Inputs: exposure_metrics, reads. Output: (problem, rootname). Parameters: none.
with counts as (
    select 'duplicate exposure metrics' as problem, rootname
    from exposure_metrics
    group by rootname
    having count(*) > 1
),

missing as (
    select distinct 'exposure without metrics' as problem, r.rootname
    from reads as r
    anti join exposure_metrics as m using (rootname)
),

inconsistent as (
    select 'inconsistent metrics' as problem, rootname
    from exposure_metrics
    where excess < 0
        or (rate_min > 0 and ratio < 1)
        or not isfinite(chi2_dof)
        or chi2_dof < 0
        or n_used > n_reads
),

final as (
    select * from counts
    union all select * from missing
    union all select * from inconsistent
)

select * from final
