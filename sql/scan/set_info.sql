-- scan/set_info.sql
-- Purpose: set one catalog_info entry. Output: catalog_info. Parameters: $key, $value.
insert or replace into catalog_info (key, value)
values ($key, $value)
