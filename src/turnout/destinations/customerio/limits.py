"""Customer.io's Track API limits, in one place, each with where it comes from.

Mapping checks messages against these before anything is sent (so a message that can never be
accepted is dead-lettered with the limit named instead of failing at Customer.io), and the request
builder packs v2 batches within them. Each comes from Customer.io's published Track API limits.
"""

from __future__ import annotations

# A person id (`userId`, `previousId`) and an object id: "150 bytes" (§6.1). Longer ids are
# rejected by Customer.io, and cutting an id would address a different person, so Turnout
# dead-letters the message.
ID_MAX_BYTES = 150

# An attribute name: "150 bytes" (§6.1). A cut name would be a different attribute, so a longer
# name dead-letters the message.
ATTRIBUTE_NAME_MAX_BYTES = 150

# An attribute value: "1000 bytes" (§6.1; live error "value for attribute 'x' cannot be longer
# than 1000 bytes"). Strings are cut to fit (recorded as an adjustment); a nested object or array
# cannot be cut meaningfully, so a longer one dead-letters the message.
ATTRIBUTE_VALUE_MAX_BYTES = 1000

# "300 unique attributes per person or identify call" (§6.1). The connection setting
# `max_traits_per_identify` may not exceed it; objects with more are dead-lettered.
ATTRIBUTES_PER_CALL_MAX = 300

# Total size of one object's (or relationship's) attributes: 100 KB (§6.1).
OBJECT_ATTRIBUTES_MAX_BYTES = 100_000

# An event name: "100 bytes" (§6.1; live error "event name cannot be longer than 100 bytes",
# seen for a page whose name was a long URL). Names are cut at a character boundary to fit.
EVENT_NAME_MAX_BYTES = 100

# Event data: "100,000 bytes per event" (§6.1). Event properties cannot be cut without losing
# meaning, so a larger event is dead-lettered.
EVENT_DATA_MAX_BYTES = 100_000

# A device token is stored as an attribute value (live error "value for attribute 'token' cannot
# be longer than 1000 bytes", §7.1).
DEVICE_TOKEN_MAX_BYTES = ATTRIBUTE_VALUE_MAX_BYTES

# One item of `/api/v2/batch` and the body of `/api/v2/entity`: "must be smaller than 32kb"
# (§5.3). Whether "kb" means 1000 or 1024 is not said; 32,000 is under both readings.
V2_ITEM_MAX_BYTES = 32_000

# A whole `/api/v2/batch` body: "< 500 KB" (§5.3). 499,000 keeps under both readings of KB and
# leaves room for a proxy adding whitespace, as segment-analytics-python does for the same limit.
V2_BATCH_MAX_BYTES = 499_000

# The number of items in one v2 batch is undocumented (§5.3); Segment sends at most 100 and
# RudderStack at most 1000. The connection's `batch_size` (default 100) may not exceed this.
V2_BATCH_ITEMS_MAX = 1000
