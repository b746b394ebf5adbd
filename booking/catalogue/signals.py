"""What the catalogue announces (blinker): the bookings feature reacts without the catalogue
importing it."""

from blinker import Namespace

_signals = Namespace()

# Sent inside the transaction that retires a resource (before it commits): sender is the
# resource, with `actor`. The bookings feature flags the resource's upcoming bookings.
resource_retired = _signals.signal("resource-retired")
