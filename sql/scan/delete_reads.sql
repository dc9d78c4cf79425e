-- scan/delete_reads.sql
-- Purpose: remove the reads of an exposure before it is written again (same transaction),
--          whether it is found by rootname or by the file it came from.
-- Inputs/outputs: reads, exposures. Parameters: $rootname, $path.
delete from reads
where rootname = $rootname
    or rootname in (select e.rootname from exposures as e where e.path = $path)
