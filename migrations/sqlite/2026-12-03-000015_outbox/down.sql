DROP TABLE consent_expiries;
DROP TABLE dsar_recipient_notices;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP TABLE outbox_messages;
