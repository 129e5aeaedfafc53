"""A tiny calculator used by greenpatch's verification tests."""
