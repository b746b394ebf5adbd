"""What the catalogue announces (blinker): the bookings feature reacts without the catalogue
importing it."""

from blinker import Namespace

_signals = Namespace()

# Sent inside the transaction that retires a resource (before it commits): sender is the
# resource, with `actor`. The bookings feature flags the resource's upcoming bookings.
resource_retired = _signals.signal("resource-retired")

# Sent inside the transaction that changes a resource's terms (before it commits) when
# upcoming bookings no longer fit them (capacity, opening hours): sender is the resource, with
# `actor` and `bookings`. The bookings feature records it on each and tells their bookers.
resource_terms_changed = _signals.signal("resource-terms-changed")
