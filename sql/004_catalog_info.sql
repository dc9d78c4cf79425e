-- 004_catalog_info.sql
-- Purpose: key/value facts about the catalog itself: schema_version, created_by (tool
--          version), last_scan_at (UTC, ISO 8601), last_scan_parameters (JSON).
-- Layer:   catalog. Inputs: none. Output: table catalog_info. Parameters: none.
create table if not exists catalog_info (
    key varchar primary key,
    value varchar not null
);
