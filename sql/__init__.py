"""The catalog's SQL files, shipped with the package as ``survey.sql`` (folder ``sql/``)."""
