"""Analysis of harvested BX-histogram files: observables, plots, calibration, the summary
table. A plugin of its own so that worker nodes, which only run production scripts, need
neither matplotlib nor pyarrow; the file layout it reads (:mod:`timecal_core.cms.fast_root`) stays
in the core because production scripts write it."""
