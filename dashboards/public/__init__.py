"""The residents' page: one public page per regency, no sign-in, cached, installable (PWA)."""
