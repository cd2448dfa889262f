"""The CMS/ROOT specifics: the harvested-file layout contract (physics.md §4, §6), its fast
ROOT writer, its readers, the parameter record stored in ``.root`` outputs, and the
parameters of the CMSSW cfg files. Registered with the core as a plugin of timecal-core's
own distribution (:mod:`.plugin`), so that the generic layers never import it; production
scripts and the analysis import it.

May import: contract.
"""
