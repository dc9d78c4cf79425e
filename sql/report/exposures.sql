-- report/exposures.sql
-- Purpose: one row per catalogued exposure for `survey report`: header facts, the verdict and
--          scores of `survey flag`, and what `survey fix` did with the FLT sky before/after.
-- Inputs:  exposures, flags, fixes. Output: rows ordered by EXPSTART. Parameters: none.
-- Units:   exptime s; expstart/expend MJD (UT); score, excess, lr_max, sky medians, means,
--          σ and std e⁻/s (columns: sql/README.md).
with final as (
    select
        e.rootname,
        e.asn_id,
        e.targname,
        e.filter,
        e.samp_seq,
        e.nsamp,
        e.exptime,
        e.expstart,
        e.expend,
        e.applicable,
        f.verdict,
        f.reason,
        f.score,
        f.excess,
        f.ratio,
        f.chi2_dof,
        f.lr_max,
        f.n_used,
        -- by pattern: flt_sky_median, _mean, _sigma, … and flt_sky_std once the scan stores it
        e.* like 'flt_sky_%',
        x.status as fix_status,
        x.message as fix_message,
        x.method as fix_method,
        -- by pattern: before_/after_ median, sigma, bimodality, npix, and mean, std (notebook
        -- window) where the fixes table has them; report.data adds any missing as NULL
        x.* similar to '(before|after)_(median|sigma|bimodality|npix|mean|std)'
    from exposures as e
    left join flags as f using (rootname)
    left join fixes as x using (rootname)
)

select * from final
order by expstart, rootname
