-- 003_scan_errors.sql
-- Purpose: the `scan_errors` table, one row per file that could not be scanned (its latest
--          failure); a later successful scan of the file deletes the row.
-- Layer:   catalog (written by `survey scan`).
-- Inputs:  none. Output: table scan_errors (created if missing). Parameters: none.
-- kind: 'input' (not a readable WFC3/IR IMA), 'duplicate' (its ROOTNAME is catalogued from
--       another file), 'flt' (the FLT beside a catalogued IMA is unreadable), 'internal' (an
--       unexpected error: a bug, please report it).
create table if not exists scan_errors (
    path varchar primary key,
    kind varchar not null,
    message varchar not null,
    failed_at timestamp not null,
    file_size bigint,
    file_mtime_ns bigint,
    survey_version varchar not null
);
