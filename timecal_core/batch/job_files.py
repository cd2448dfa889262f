"""Batch job scripts written into files nobody else can touch.

dask-jobqueue (0.9) writes each job script through ``dask.utils.tmpfile``, which makes a
temporary name, deletes the file and hands out the name: the script is then opened again by
name in a shared ``/tmp``, where another user can put a file or a symlink of theirs first and
change the job the owner submits. The job class here writes the script into the file
``mkstemp`` created (``O_EXCL``), through that descriptor, and removes it after submission.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager


def exclusive_job_files(job_class):
    """``job_class`` (a dask-jobqueue ``Job``) writing each job script into a file it
    creates itself."""

    class ExclusiveScriptJob(job_class):
        @contextmanager
        def job_file(self):
            fd, name = tempfile.mkstemp(suffix=".sh", prefix="timecal-job-")
            try:
                os.fchmod(fd, 0o644 & ~_umask())  # the batch client may read it as another account
                with os.fdopen(fd, "w") as fh:
                    fh.write(self.job_script())
                yield name
            finally:
                try:
                    os.unlink(name)
                except OSError:
                    pass

    ExclusiveScriptJob.__name__ = ExclusiveScriptJob.__qualname__ = job_class.__name__
    return ExclusiveScriptJob


def _umask() -> int:
    """This process's umask, read without changing it (Linux 4.7+), else the usual 022."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
