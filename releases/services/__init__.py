"""Every write to the releases domain, one function per move (policy, change requests)."""
