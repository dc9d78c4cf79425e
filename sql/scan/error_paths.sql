-- scan/error_paths.sql
-- Purpose: the files with a recorded failure (kept in memory by the writer).
-- Inputs: scan_errors. Output: (path). Parameters: none.
select path
from scan_errors
