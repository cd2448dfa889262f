"""Analysis of harvested BX-histogram files: layout, observables, plots, calibration."""
