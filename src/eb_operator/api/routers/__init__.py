"""One router per resource: offer sets, sessions, VOSI, operations."""
