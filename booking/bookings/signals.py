"""What the bookings feature announces, for whoever wants to react (blinker, as Flask uses):
the service does not need to know who listens, and no import runs back into it."""

from blinker import Namespace

_signals = Namespace()

# Sent after a commit that gave capacity back (a cancellation, a rejection, a booking made
# shorter or smaller): sender is the resource id, with `now`. The waitlist offers the place.
capacity_freed = _signals.signal("capacity-freed")
