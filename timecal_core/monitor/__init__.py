"""What a user looks through: the cmd2 production monitor (a thin client of the control
seam), the ``timecal`` home shell over every production, and ``timecal serve`` (status pages
over HTTP on 127.0.0.1).

May import: contract, config, plan, ledger, views, control. Never run or driver: the monitor
talks to the driver only through the control seam, so the driver can live in another process.
"""
