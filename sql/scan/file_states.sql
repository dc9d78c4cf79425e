-- scan/file_states.sql
-- Purpose: what the catalog knows about each scanned file, to skip unchanged ones.
-- Inputs: exposures. Output: one row per catalogued file. Parameters: none.
select path, rootname, file_size, file_mtime_ns, fingerprint, neighbours_sig, params_digest
from exposures
