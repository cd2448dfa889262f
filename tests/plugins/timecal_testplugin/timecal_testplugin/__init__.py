"""A stand-alone timecal plugin, installed by the tests like any third-party plugin, whose
``sleeper`` script gives the tests tasks that take a known time, fail, or fail once."""
