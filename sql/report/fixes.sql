-- report/fixes.sql
-- Purpose: the per-read sky series of every fixed exposure (`fixes`), for the ramp charts.
-- Inputs:  fixes. Output: one row per fixed exposure. Parameters: none.
-- Units:   read_times s; read_sky, read_offsets e⁻/s (lists indexed by read, zeroth first).
select rootname, method, read_times, read_sky, read_offsets, read_popped
from fixes
where status = 'fixed' and read_times is not null
order by rootname
