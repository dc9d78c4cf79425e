-- scan/insert_error.sql
-- Purpose: record (or replace) the failure of one file.
-- Output: scan_errors.
-- Parameters: $path, $kind, $message, $failed_at (UTC), $file_size (bytes),
--             $file_mtime_ns (ns since the epoch), $survey_version.
insert or replace into scan_errors
    (path, kind, message, failed_at, file_size, file_mtime_ns, survey_version)
values ($path, $kind, $message, $failed_at, $file_size, $file_mtime_ns, $survey_version)
