"""The ``gateway`` execution backend: a Dask cluster handed out by a dask-gateway server,
as analysis facilities do (coffea-casa, Purdue AF, Fermilab EAF...), watched through what
the gateway's public API exposes (the cluster's status, the workers that connect)."""
