-- scan/catalog_keys.sql
-- Purpose: which rootname each catalogued file holds (the writer keeps this in memory to
--          skip deletes that have nothing to delete).
-- Inputs: exposures. Output: (rootname, path). Parameters: none.
select rootname, path
from exposures
