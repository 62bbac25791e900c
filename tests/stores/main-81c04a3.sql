-- The endpoint store as main made it before migrations (SQLite): EndpointStore.create_schema of
-- commit 81c04a3 on an empty file, dumped with sqlite3 .schema. tests/test_migrations.py upgrades it.
CREATE TABLE endpoints (
	id VARCHAR(40) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	url TEXT NOT NULL, 
	description VARCHAR(1024) NOT NULL, 
	signature_method VARCHAR(8) NOT NULL, 
	secret VARCHAR(512) NOT NULL, 
	event_types JSON, 
	enabled BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	headers TEXT, 
	rate_limit_per_second FLOAT, 
	retry_schedule JSON, 
	previous_secret TEXT, 
	previous_secret_expires_at DATETIME, 
	disabled_reason TEXT, 
	disabled_by VARCHAR(16), 
	disabled_at DATETIME, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_endpoints_tenant ON endpoints (tenant);
CREATE TABLE signing_keys (
	kid VARCHAR(64) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	generation INTEGER NOT NULL, 
	private_key TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	signs_from DATETIME NOT NULL, 
	retires_at DATETIME, 
	PRIMARY KEY (kid), 
	UNIQUE (tenant, generation)
);
CREATE INDEX ix_signing_keys_tenant ON signing_keys (tenant);
CREATE TABLE endpoint_health (
	endpoint_id VARCHAR(40) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	consecutive_failures INTEGER NOT NULL, 
	failing_since DATETIME, 
	failing_notified BOOLEAN NOT NULL, 
	last_error TEXT, 
	last_status_code INTEGER, 
	last_attempt_at DATETIME, 
	last_success_at DATETIME, 
	PRIMARY KEY (endpoint_id)
);
CREATE INDEX ix_endpoint_health_tenant ON endpoint_health (tenant);
CREATE TABLE operational_notices (
	id VARCHAR(160) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	endpoint_id VARCHAR(40) NOT NULL, 
	transition VARCHAR(16) NOT NULL, 
	at DATETIME NOT NULL, 
	owed_at DATETIME NOT NULL, 
	object JSON NOT NULL, 
	sent_at DATETIME, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_operational_notices_sent_at ON operational_notices (sent_at);
CREATE TABLE endpoint_attempt_counts (
	endpoint_id VARCHAR(40) NOT NULL, 
	hour DATETIME NOT NULL, 
	succeeded INTEGER NOT NULL, 
	failed INTEGER NOT NULL, 
	PRIMARY KEY (endpoint_id, hour)
);
CREATE TABLE endpoint_flow (
	endpoint_id VARCHAR(40) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	window FLOAT NOT NULL, 
	lowered_at FLOAT NOT NULL, 
	lowered_by TEXT, 
	paused_until FLOAT NOT NULL, 
	paused_at FLOAT NOT NULL, 
	pause_reason TEXT, 
	paused_by VARCHAR(200), 
	tokens FLOAT NOT NULL, 
	tokens_at FLOAT NOT NULL, 
	next_turn_at FLOAT NOT NULL, 
	mean_seconds FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (endpoint_id)
);
CREATE TABLE endpoint_leases (
	id VARCHAR(32) NOT NULL, 
	endpoint_id VARCHAR(40) NOT NULL, 
	started_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_endpoint_leases_endpoint_id ON endpoint_leases (endpoint_id);
CREATE TABLE token_buckets (
	"key" VARCHAR(128) NOT NULL, 
	tokens FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE portal_session_revocations (
	tenant VARCHAR(64) NOT NULL, 
	session_id VARCHAR(64) NOT NULL, 
	until DATETIME NOT NULL, 
	PRIMARY KEY (tenant, session_id)
);
CREATE INDEX ix_portal_session_revocations_until ON portal_session_revocations (until);
