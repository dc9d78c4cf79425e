-- 100_ranking.sql
-- Purpose: the triage of `survey flag`: every catalogued exposure with its metrics, exactly
--          one verdict (linear, uniform-tvb, spatial-tvb, not-applicable), a short reason
--          and a score, most non-linear first. Rules (first match wins):
--            not-applicable  the scan marked it so (grism, spatial scan, too few reads), or
--                            fewer than $min_reads reads are precise enough to use;
--            spatial-tvb     ≥ $min_lr_reads used reads with left − right > flag_lr_threshold
--                            and left / right > flag_lr_ratio (scattered Earth light);
--            uniform-tvb     excess ≥ $min_excess, ratio ≥ $min_ratio and χ²/dof ≥ $min_chi2
--                            (a spatially uniform, He I-like change of the sky rate);
--            linear          otherwise.
-- Layer:   query (run by `survey flag`, no state). Inputs: exposures, exposure_metrics.
-- Output:  one row per exposure. score (e⁻/s) = max(0, excess − 3·excess_err): the change of
--          the sky rate beyond three times its noise (0 for exposures without metrics).
-- Parameters (bound): $min_excess e⁻/s, $min_ratio 1, $min_chi2 1, $min_reads reads,
--          $min_lr_reads reads. The spatial thresholds are the session variables of
--          030_exposure_metrics.sql.
with exposures_in as (
    select
        rootname,
        asn_id,
        filter,
        samp_seq,
        nsamp,
        expstart,
        applicable,
        not_applicable_reason
    from exposures
),

joined as (
    select
        e.*,
        m.n_used,
        m.rate_min,
        m.rate_max,
        m.rate_median,
        m.excess,
        m.ratio,
        m.excess_err,
        m.chi2_dof,
        m.lr_max,
        m.lr_ratio_max,
        coalesce(m.n_lr_reads, 0) as n_lr_reads
    from exposures_in as e
    left join exposure_metrics as m using (rootname)
),

verdicts as (
    select
        *,
        case
            when not applicable or coalesce(n_used, 0) < $min_reads then 'not-applicable'
            when n_lr_reads >= $min_lr_reads then 'spatial-tvb'
            when excess >= $min_excess and ratio >= $min_ratio and chi2_dof >= $min_chi2
                then 'uniform-tvb'
            else 'linear'
        end as verdict
    from joined
),

final as (
    select
        rootname,
        greatest(coalesce(excess - 3 * excess_err, 0.0), 0.0) as score,
        verdict,
        case verdict
            when 'not-applicable' then coalesce(
                not_applicable_reason,
                'only ' || coalesce(n_used, 0) || ' precise read(s), fewer than ' || $min_reads
            )
            when 'spatial-tvb' then
                'left side brighter in ' || n_lr_reads || ' reads (L−R up to '
                || round(lr_max, 3) || ' e⁻/s, L/R ' || round(lr_ratio_max, 2)
                || '): Earth-limb scattered light, flatten-ramp does not apply'
            when 'uniform-tvb' then
                'sky rate ' || round(rate_min, 3) || '→' || round(rate_max, 3) || ' e⁻/s (×'
                || round(ratio, 2) || ', χ²/dof ' || round(chi2_dof, 1)
                || '), uniform (L−R ≤ ' || round(lr_max, 3) || ' e⁻/s): flatten-ramp applies'
            else
                'constant sky rate within noise (excess ' || round(excess, 3)
                || ' e⁻/s, χ²/dof ' || round(chi2_dof, 1) || ')'
        end as reason,
        excess,
        ratio,
        chi2_dof,
        rate_min,
        rate_max,
        rate_median,
        lr_max,
        lr_ratio_max,
        n_lr_reads,
        n_used,
        filter,
        asn_id,
        samp_seq,
        nsamp,
        expstart
    from verdicts
    order by score desc, excess desc nulls last, rootname
)

select * from final
