-- scan/delete_error.sql
-- Purpose: forget the recorded failure of a file (it is being scanned again).
-- Inputs/outputs: scan_errors. Parameters: $path.
delete from scan_errors
where path = $path
