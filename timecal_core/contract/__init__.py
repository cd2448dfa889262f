"""The plugin contract: what a plugin implements (the hooks and the small frozen dataclasses
they yield), the registry that finds plugins through the ``timecal`` entry-point group, the
core's two exception types, and what a backend hands back (a running cluster).

May import: nothing else of timecal_core (every other subpackage stands on this one).
"""
