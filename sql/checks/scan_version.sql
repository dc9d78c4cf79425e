-- checks/scan_version.sql
-- Must return no rows: every exposure was scanned with the current scan parameters and
-- algorithm, when the caller states them (session variable `scan_params_digest`, set by
-- `survey flag`). Rows from an older scan lack columns the triage reads (scan algorithm 2
-- added the box means that left − right is taken from: NULL there, limb light would pass as
-- He I); `survey scan` on the same files rescans exactly those.
-- Inputs: exposures. Output: (problem, rootname). Parameters: none (session variable).
with stale as (
    select 'scanned with older parameters: rescan' as problem, rootname
    from exposures
    where getvariable('scan_params_digest') is not null
        and params_digest is distinct from getvariable('scan_params_digest')
),

final as (
    select * from stale
)

select * from final
