-- scan/insert_reads.sql
-- Purpose: write the reads of one exposure from the Arrow batch `reads_batch` (a Python
--          variable the caller holds; columns matched by name).
-- Inputs: reads_batch. Output: reads. Parameters: none.
insert into reads by name
select * from reads_batch
