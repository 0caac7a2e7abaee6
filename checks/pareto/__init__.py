"""make pareto: every registered model x exported file on accuracy, size, work and speed, the
files no other beats on both accuracy and latency, and the fastest file that meets an accuracy
floor (checks/pareto/run.py measures, report.py writes reports/pareto.md/.json/.png)."""
