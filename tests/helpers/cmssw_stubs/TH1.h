#include "cmssw_stub_api.h"
