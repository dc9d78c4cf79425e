-- scan/get_info.sql
-- Purpose: read one catalog_info entry. Inputs: catalog_info. Parameters: $key.
select value
from catalog_info
where key = $key
