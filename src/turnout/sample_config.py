"""The commented configuration `turnout init` writes."""

SAMPLE = '''# Turnout configuration. Every setting shown has the default it would have if left out,
# except the examples under [[sources]] and [[connections]].

[server]
listen = "127.0.0.1:8088"        # TURNOUT_LISTEN
data_dir = "turnout-data"         # TURNOUT_DATA_DIR: SQLite log, store, keys
public_url = ""                   # how browsers reach this server; empty = from each request
admin_token = ""                  # management API / dashboard; 32+ characters; generated if empty
auth_failure_limit = 10           # wrong admin tokens per client address in the window: then 429
auth_failure_window_s = 600
metrics_auth = false              # true: /metrics needs Authorization: Bearer <admin token>
api_docs_public = false           # true: the API description needs no sign-in
max_message_bytes = 32768         # per call (Segment's limit)
max_request_bytes = 512000        # per request (500 KB)
max_batch_messages = 2500
cors_origins = ["*"]
max_header_bytes = 16384          # request line + headers; over it: 431
max_headers = 100                 # over it: 431
max_url_bytes = 8192              # over it: 414
header_timeout_s = 10             # a request head not whole by then: connection closed
body_timeout_s = 30               # a body not whole by then (from its head): connection closed
keep_alive_timeout_s = 5          # an idle connection is closed after this
max_connections = 1000            # open at once; beyond it: 503 + Retry-After

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

# A webhook: every call POSTed as Segment-spec JSON (docs/destinations/webhook.md).
# [[connections]]
# name = "hook"
# destination = "webhook"
# sources = ["web"]
# rate_limit = 50                 # requests/s to the receiver
#
# [connections.settings]
# url = "https://hooks.example.com/turnout"
# signing_secret = "env:TURNOUT_WEBHOOK_SECRET"   # whsec_<base64>: signs every request
# batch_size = 1                  # calls per request; above 1 the body is {"batch": [...]}
# request_timeout = 10            # seconds
#
# [connections.settings.headers]  # sent with every request; each value is a secret
# Authorization = "env:HOOK_TOKEN"
'''
