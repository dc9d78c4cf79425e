-- report/fix_parameters.sql
-- Purpose: the distinct parameter sets `survey fix` ran with (JSON), for the report footer.
-- Inputs:  fixes. Output: one row per parameter set with its count. Parameters: none.
select parameters, count(*) as n
from fixes
group by parameters
order by n desc, parameters
