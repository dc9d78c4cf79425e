-- checks/read_counts.sql
-- Must return no rows: every exposure has exactly NSAMP − 1 reads, numbered 1 … NSAMP − 1,
-- and every read belongs to a catalogued exposure.
-- Inputs: exposures, reads. Output: (problem, rootname, detail). Parameters: none.
with per_exposure as (
    select
        e.rootname,
        e.nsamp,
        count(r.sampnum) as n_reads,
        min(r.sampnum) as first_read,
        max(r.sampnum) as last_read
    from exposures as e
    left join reads as r using (rootname)
    group by e.rootname, e.nsamp
),

wrong_counts as (
    select
        'reads do not number 1 … NSAMP−1' as problem,
        rootname,
        'nsamp ' || nsamp || ', ' || n_reads || ' reads' as detail
    from per_exposure
    where n_reads != nsamp - 1
        or (n_reads > 0 and (first_read != 1 or last_read != nsamp - 1))
),

orphans as (
    select distinct
        'read without exposure' as problem,
        r.rootname,
        'sampnum ' || r.sampnum as detail
    from reads as r
    anti join exposures as e using (rootname)
),

final as (
    select * from wrong_counts
    union all select * from orphans
)

select * from final
