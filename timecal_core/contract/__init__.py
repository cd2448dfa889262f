"""The plugin contract: what a plugin implements (the hooks and the small frozen dataclasses
they yield), the registry that finds plugins through the ``timecal`` entry-point group, the
core's two exception types, what a backend hands back (a running cluster), and the rules
every layer and plugin follows for the files and directories another user could have
prepared (``trust``).

May import: nothing else of timecal_core (every other subpackage stands on this one).
"""
