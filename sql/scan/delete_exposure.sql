-- scan/delete_exposure.sql
-- Purpose: remove an exposure row (by rootname or by file) before it is written again.
-- Inputs/outputs: exposures. Parameters: $rootname, $path.
delete from exposures
where rootname = $rootname or path = $path
