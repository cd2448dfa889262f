"""The ``slurm`` execution backend: Dask workers in SLURM jobs, with the batch system's own
view of those jobs (squeue) so that jobs dying before their worker connects are noticed."""
