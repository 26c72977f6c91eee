"""Where results go: records (``records``), body files (``bodies``), the JUnit
report (``junit``), the progress bar, the summary and exit status
(``summary``), and what ``--resume`` reads back (``resume``)."""
