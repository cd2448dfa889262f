// As CLHEP's CLHEP/Units/GlobalPhysicalConstants.h: the namespaced header, then a using-directive that
// reaches every file including this one.
#include "cmssw_stub_api.h"
using namespace CLHEP;
