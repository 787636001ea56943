"""Placeholder: filled in by the test-bed work."""
