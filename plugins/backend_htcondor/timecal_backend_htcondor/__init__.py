"""The ``htcondor`` execution backend: Dask workers in HTCondor jobs, with the schedd's view
of those jobs (idle/running/held and HoldReason) so that held or vanished jobs are noticed."""
