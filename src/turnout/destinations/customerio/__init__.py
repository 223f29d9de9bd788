"""Customer.io destination: Segment-format calls to Customer.io's Track API.

Stages, in the order data flows: `settings` (what the user configures), `mapping` (message to
operations, pure), `operations` (what Customer.io is asked to do, in both API forms), `requests`
(operations to HTTP requests within `limits`), `client` (send, classify with `responses`), and
`destination` (the plugin the registry hands to the delivery lane).
"""

from turnout.destinations.customerio.destination import CustomerIO
from turnout.destinations.customerio.settings import CustomerIOSettings

__all__ = ["CustomerIO", "CustomerIOSettings"]
