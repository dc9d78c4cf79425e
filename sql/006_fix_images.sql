-- 006_fix_images.sql
-- Purpose: the `fix_images` table, one row per exposure `survey fix` fixed (its latest fix):
--          the FLT sky histograms before (archive FLT) and after on common bins, and central
--          before/after cutouts as PNG, so `survey report` needs no FITS reads.
-- Layer:   catalog (written by `survey fix` with the exposure's `fixes` row; removed when a
--          later attempt is refused or fails).
-- Inputs:  none. Output: table fix_images (created if missing). Parameters: none.
-- Units and meaning of every column: sql/README.md (section `survey fix`).
create table if not exists fix_images (
    rootname varchar primary key,
    hist_lo double not null,
    hist_hi double not null,
    before_hist integer[],
    after_hist integer[] not null,
    cutout_x0 integer not null,
    cutout_y0 integer not null,
    cutout_size integer not null,
    stretch_sigma double not null,
    before_png blob,
    after_png blob not null,
    survey_version varchar not null,
    made_at timestamp not null
);
