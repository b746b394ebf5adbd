"""Bookings: the rules, the state machine and the use cases around a booking."""
