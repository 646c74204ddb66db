-- The W3C trace context of the span that sent a signal (traceparent and tracestate, never
-- baggage), so the execution that consumes it links to that span: one trace shows the
-- request that sent the signal and the run it resumed. Only new nullable columns.
ALTER TABLE durable.signals ADD COLUMN traceparent text;
ALTER TABLE durable.signals ADD COLUMN tracestate text;
