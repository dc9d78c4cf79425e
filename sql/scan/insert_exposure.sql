-- scan/insert_exposure.sql
-- Purpose: write one exposure row from the Arrow batch `exposure_batch` (a Python
--          variable the caller holds; columns matched by name: one the table lacks is an error).
-- Inputs: exposure_batch. Output: exposures. Parameters: none.
insert into exposures by name
select * from exposure_batch
