-- report/parameters.sql
-- Purpose: the thresholds `survey flag` used (one row; they are the same on every row).
-- Inputs:  flags. Output: at most one row. Parameters: none. Units: sql/README.md.
select
    param_min_excess as min_excess,
    param_min_ratio as min_ratio,
    param_min_chi2 as min_chi2,
    param_min_reads as min_reads,
    param_min_lr_reads as min_lr_reads,
    param_lr_threshold as lr_threshold,
    param_lr_ratio as lr_ratio,
    param_max_read_error as max_read_error,
    param_read_floor as read_floor,
    flagged_at
from flags
order by flagged_at desc
limit 1
