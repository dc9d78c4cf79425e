-- report/images.sql
-- Purpose: sky histograms and PNG cutouts of the fixed exposures (`fix_images`) whose
--          `fixes` row still says fixed.
-- Inputs:  fix_images, fixes. Output: one row per exposure. Parameters: none.
-- Units:   hist_lo, hist_hi, stretch_sigma e⁻/s; cutout_* FLT pixels.
select i.*
from fix_images as i
inner join fixes as x using (rootname)
where x.status = 'fixed'
order by i.rootname
