"""Pure carrier rules."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones


@cache
def offered_timezones() -> frozenset[str]:
    """The zones a carrier may choose: named places, not "localtime" (the host's), "Factory"
    (no offset), "UTC" or the "Etc/GMT+12" kind (whose sign is the reverse of what it
    reads). The form offers these and the service refuses any other."""
    return frozenset(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))
