-- Webhook hardening (issue 14).
--
-- The SHA-256 of each delivery's signed body. `X-GitHub-Delivery` is not covered by the
-- signature, so a captured delivery could be replayed under fresh delivery ids; a body seen
-- before under another id is refused. (A redelivery keeps its id and passes.)
ALTER TABLE webhook_deliveries ADD COLUMN body_sha256 TEXT;
CREATE UNIQUE INDEX webhook_deliveries_body ON webhook_deliveries (body_sha256);

-- The jobs a delivery queues, stored with its state change and cleared once they are queued.
-- GitHub does not redeliver failed deliveries by itself: a sweeper re-queues deliveries whose
-- jobs never reached the queue (Redis down, or a crash between commit and push).
ALTER TABLE webhook_deliveries ADD COLUMN jobs JSONB;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (received_at)
    WHERE outcome = 'pending';
