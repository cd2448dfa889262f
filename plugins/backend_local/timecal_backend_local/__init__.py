"""The ``local`` execution backend: a Dask ``LocalCluster`` on the machine running BXRun."""
