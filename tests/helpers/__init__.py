"""Test helpers shared by the test suite and the benchmarks (not part of any distribution).

- ``cxx_cbc``: compiles and drives the CMSSW-free CBC header (``run_cxx``), the reference
  the Python emulator is compared with and the baseline of ``benchmarks/bench_cbcsim.py``.
- ``cmssw_standin``: a stand-in of CMSSW's Python configuration layer (``cms``,
  ``VarParsing``), because CMSSW cannot be installed here; it executes our cfg files and
  makes cmsRun's start-up check of the EDAliases.
- ``cmssw_stubs/``: a stand-in of the CMSSW C++ API the plugins use, for the same reason:
  enough to compile them and to run them as cmsRun would, the analyzer from several threads
  at once (``cmssw_stubs/drivers``).
- ``site_ca``: a CA and a certificate it signs (a site's Dask credentials, a mail server's).
- ``other_user``: another user of the machine (``nobody``) who prepares traps for the
  owner's commands (tests/test_security_*.py); ``fake_driver``: the driver they would fake.
"""
