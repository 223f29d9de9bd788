"""The commented configuration `turnout init` writes."""

SAMPLE = '''# Turnout configuration. Every setting shown has the default it would have if left out,
# except the examples under [[sources]] and [[connections]].

[server]
listen = "127.0.0.1:8088"        # TURNOUT_LISTEN
data_dir = "turnout-data"         # TURNOUT_DATA_DIR: SQLite log, store, keys
public_url = ""                   # how browsers reach this server; empty = from each request
admin_token = ""                  # management API / dashboard; generated into data_dir if empty
max_message_bytes = 32768         # per call (Segment's limit)
max_request_bytes = 512000        # per request (500 KB)
max_batch_messages = 2500
cors_origins = ["*"]

[log]
backend = "sqlite"                # "sqlite" (one process) or "nats" (several)
sync = "full"                     # "full": survives power loss; "normal": survives crashes
retention_hours = 168             # entries every connection has finished with are kept this long

[delivery]
linger_ms = 20                    # wait this long to fill a batch
concurrency = 8                   # requests in flight per connection
retry_window_hours = 72           # then a message is dead-lettered
max_backoff_s = 300

[[sources]]
name = "web"
write_key = "change-me"

[[connections]]
name = "customerio"
destination = "customerio"
sources = ["web"]                 # empty = every source
rate_limit = 100                  # requests/s to Customer.io

[connections.settings]
site_id = "your-site-id"
api_key = "env:CIO_API_KEY"       # read from the environment
region = "us"                     # "us" or "eu"
'''
