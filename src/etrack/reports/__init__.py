"""Reports: kinds (a function from scope and period to sections of rows and
totals, read from what is stored), formats (XLSX, PDF, CSV for Brazilian
Excel or RFC 4180, KML), delivery (e-mail, webhook) and schedules
(docs/reports.md). The worker's jobs that send the schedules' periods are
etrack.jobs.reports."""
