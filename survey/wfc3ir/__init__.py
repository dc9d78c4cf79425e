"""Everything that knows the WFC3/IR detector and its MULTIACCUM file format."""
