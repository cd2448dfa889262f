"""The CMSSW production chain users ran with the old tool: ``PUCalibration_cfg.py`` then
``Harvester_cfg.py``, in the task directory, after the timerc ``[cmssw] init`` snippet."""
