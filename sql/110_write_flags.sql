-- 110_write_flags.sql
-- Purpose: store the triage of `survey flag` as the table `flags` (replaced on every run),
--          each row with the parameters it was made with.
-- Layer:   state written by `survey flag`. Inputs: flag_batch (the rows of 100_ranking.sql,
--          an Arrow table handed over by the caller). Output: table flags.
-- Parameters (bound): $min_excess e⁻/s, $min_ratio 1, $min_chi2 1, $min_reads reads,
--          $min_lr_reads reads, $lr_threshold e⁻/s, $lr_ratio 1, $lr_nsigma σ,
--          $max_read_error e⁻/s,
--          $read_floor e⁻/s, $survey_version, $flagged_at (UTC).
create or replace table flags as
with final as (
    select
        b.*,
        cast($min_excess as double) as param_min_excess,
        cast($min_ratio as double) as param_min_ratio,
        cast($min_chi2 as double) as param_min_chi2,
        cast($min_reads as integer) as param_min_reads,
        cast($min_lr_reads as integer) as param_min_lr_reads,
        cast($lr_threshold as double) as param_lr_threshold,
        cast($lr_ratio as double) as param_lr_ratio,
        cast($lr_nsigma as double) as param_lr_nsigma,
        cast($max_read_error as double) as param_max_read_error,
        cast($read_floor as double) as param_read_floor,
        cast($survey_version as varchar) as survey_version,
        cast($flagged_at as timestamp) as flagged_at
    from flag_batch as b
)

select * from final
