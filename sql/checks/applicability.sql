-- checks/applicability.sql
-- Must return no rows: an exposure that is not applicable says why, an applicable one has no
-- reason, and grism exposures are never applicable.
-- Inputs: exposures. Output: (problem, rootname). Parameters: none.
with final as (
    select
        case
            when not applicable and not_applicable_reason is null then 'no reason given'
            when applicable and not_applicable_reason is not null then 'reason on applicable'
            else 'grism marked applicable'
        end as problem,
        rootname
    from exposures
    where (not applicable and not_applicable_reason is null)
        or (applicable and not_applicable_reason is not null)
        or (applicable and filter in ('G102', 'G141'))
)

select * from final
