-- Webhooks: the position an endpoint starts after (services/webhooks/routes.py,
-- services/webhooks/deliveries.queue_event), and the index the sweep of settled
-- deliveries reads (services/webhooks/retention.py). 0019 made the endpoints.
--
-- An endpoint takes only events with a position above its start_position: the
-- store's max(events.position), read when it was made, after the webhook queue was
-- bound to its business. Positions are drawn in commit order (0011), so every event
-- committed after that read has a higher position and reaches the queue through the
-- binding. An event at or below it may still arrive: the relay republishes a batch
-- after a broker hiccup, and an event published before the binding (never queued for
-- this endpoint) would then be queued after newer ones the endpoint already got.
-- Such an event is older than the endpoint, and is left out.
--
-- Endpoints made before this migration keep 0: they take what they took before.
ALTER TABLE webhook_endpoints ADD COLUMN start_position bigint NOT NULL DEFAULT 0;

-- Delivered and failed deliveries are deleted LEDGER_WEBHOOK_RETENTION_DAYS after
-- they settled (delivered, or their last attempt); pending ones never
-- (services/webhooks/retention.py). The sweep reads them oldest first through this
-- index, which holds the settled rows only.
CREATE INDEX webhook_deliveries_settled ON webhook_deliveries
    ((coalesce(delivered_at, last_attempt_at, created_at)))
    WHERE status IN ('delivered', 'failed');
