"""Running Siaga: local servers, the ``siaga up`` supervisor and broker administration.

Nothing in the data plane imports this package; it may import every other one.
"""
