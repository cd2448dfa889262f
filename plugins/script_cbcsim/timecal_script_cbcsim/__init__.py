"""cbcsim: the CMSSW-free emulator of the Phase2TrackerBXHistogram analyzer (physics.md)."""

__version__ = "0.1.0"
