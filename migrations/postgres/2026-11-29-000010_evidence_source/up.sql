-- Who vouches for the address kept as consent evidence: `peer` (the connection),
-- `proxy` (a trusted proxy's forwarding header) or `asserted` (the writing service
-- stated it). Records written before are unknown (NULL).
ALTER TABLE consent_records ADD COLUMN ip_source TEXT;
