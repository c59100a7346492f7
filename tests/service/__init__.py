"""Tests of `service/`: the HTTP API through the app factory, and the real server process."""
