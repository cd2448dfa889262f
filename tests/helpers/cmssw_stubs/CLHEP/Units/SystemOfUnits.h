// CLHEP/Units/SystemOfUnits.h: the units and constants in namespace CLHEP only.
#include "cmssw_stub_api.h"
