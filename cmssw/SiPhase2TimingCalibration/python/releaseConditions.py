"""Geometry, era and global tag of the timing-calibration cfgs, following the CMSSW release.

Why: the Phase-2 geometry scenarios come and go with releases. D88 (the geometry of the
users' CMSSW_12_5 GEN-SIM) exists up to the 14_0 cycle and was removed in 14_1
(cms-sw/cmssw#45370); the files were then renamed from ``GeometryExtended2026*`` to
``GeometryExtendedRun4*`` (cms-sw/cmssw#46582). A cfg that hard-codes one name fails at import
on the other releases. So the cfgs take ``geometry=``, ``era=`` and ``globaltag=`` options
whose defaults are looked up in the running release:

- geometry: the first of ``DEFAULT_GEOMETRIES`` whose ``GeometryExtended<name>_cff`` exists
  (D88 on 12_5-14_0, then D110 under its 2026 or Run4 name);
- era and global tag: those the release's own upgrade workflows use for that geometry
  (``Configuration.PyReleaseValidation.upgradeWorkflowComponents.upgradeProperties``), so a
  renamed global-tag alias follows the release; ``FALLBACK`` when that module is absent.

Every problem is a one-line ``RuntimeError`` naming the option, as cmsRun prints it.
"""
import importlib
import importlib.util
import os

# Tried in this order when geometry= is not given.
DEFAULT_GEOMETRIES = ('2026D88', 'Run4D110', '2026D110')

# (era, global tag) of the upgrade workflows, for releases without upgradeWorkflowComponents.
FALLBACK = {
    '2026D88': ('Phase2C17I13M9', 'auto:phase2_realistic_T21'),
    '2026D110': ('Phase2C17I13M9', 'auto:phase2_realistic_T33'),
    'Run4D110': ('Phase2C17I13M9', 'auto:phase2_realistic_T33'),
}


def release_name():
    return os.environ.get('CMSSW_VERSION', 'this release')


def geometry_fragments(geometry, reco_only=True):
    """The cff fragments of `geometry` a cfg loads (the Reco one provides the tracker
    geometry and topology the analyzer reads; generation + simulation also need the other)."""
    names = ['Configuration.Geometry.GeometryExtended%sReco_cff' % geometry]
    if not reco_only:
        names.append('Configuration.Geometry.GeometryExtended%s_cff' % geometry)
    return names


def fragment_file(name):
    """'Configuration.Geometry.X_cff' -> 'Configuration/Geometry/python/X_cff.py'."""
    parts = name.split('.')
    return '/'.join(parts[:2]) + '/python/' + '/'.join(parts[2:]) + '.py'


def module_exists(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def upgrade_properties(geometry):
    """(era, global tag) the release's upgrade workflows use for `geometry`, or None."""
    try:
        from Configuration.PyReleaseValidation.upgradeWorkflowComponents import upgradeProperties
    except ImportError:
        return None
    for scenarios in upgradeProperties.values():
        properties = scenarios.get(geometry)
        if properties and properties.get('Era') and properties.get('GT'):
            return properties['Era'], properties['GT']
    return None


def choose(geometry='', era='', globaltag='', reco_only=True):
    """(geometry, era module, era name, global tag, fragments) for the options given."""
    if geometry:
        if geometry.startswith('GeometryExtended') or geometry.endswith('_cff'):
            raise RuntimeError("geometry=%s: give the scenario only, e.g. geometry=2026D88 or geometry=Run4D110"
                               % geometry)
        fragments = geometry_fragments(geometry, reco_only)
        missing = [f for f in fragments if not module_exists(f)]
        if missing:
            defaults = available_defaults(reco_only)
            raise RuntimeError("geometry=%s: %s does not exist in %s (default here: %s)"
                               % (geometry, fragment_file(missing[0]), release_name(),
                                  defaults[0] if defaults else 'none'))
    else:
        found = available_defaults(reco_only)
        if not found:
            raise RuntimeError("geometry=: none of %s exists in %s; give geometry=<scenario> of your GEN-SIM input"
                               % (', '.join(DEFAULT_GEOMETRIES), release_name()))
        geometry = found[0]
        fragments = geometry_fragments(geometry, reco_only)

    default_era, default_globaltag = upgrade_properties(geometry) or FALLBACK.get(geometry, ('', ''))
    era = era or default_era
    globaltag = globaltag or default_globaltag
    if not era:
        raise RuntimeError("era=: no default era known for geometry=%s in %s; give era=<Phase2 era>"
                           % (geometry, release_name()))
    if not globaltag:
        raise RuntimeError("globaltag=: no default global tag known for geometry=%s in %s; give globaltag=<tag>"
                           % (geometry, release_name()))
    era_module_name = 'Configuration.Eras.Era_%s_cff' % era
    if not module_exists(era_module_name):
        raise RuntimeError("era=%s: %s does not exist in %s" % (era, era_module_name, release_name()))
    era_modifier = getattr(importlib.import_module(era_module_name), era)
    return geometry, era_modifier, era, globaltag, fragments


def available_defaults(reco_only=True):
    return [g for g in DEFAULT_GEOMETRIES if all(module_exists(f) for f in geometry_fragments(g, reco_only))]
