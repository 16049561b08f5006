DROP TABLE dsar_steps;
DROP TABLE dsar_requests;
